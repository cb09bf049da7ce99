"""The control interface over HTTP, and `StandinClient`, which drives it.

A stand-in running in another process (the CLI, a demo) is driven with the same
operations as an in-process `Standin`, over JSON endpoints next to the API:

    POST <prefix>/_control/<operation>     body: JSON object of keyword arguments
    GET  <prefix>/_control/<operation>     read-only ones only: items, now, requests

Answers are `200 {"result": <value>}`; a bad call is
`400 {"error": {"tipo": "ValueError" | "TypeError", "mensaje": "..."}}`, an
unknown operation 404. The operations and their arguments:

    generate         {"n": 300000, "seed": 1}
    load             {"items": [{"codigo": "ACE-0001", "stock": "340.000", ...}]}
    items            {}                       -> list of items as the API sends them
    edit             {"changes": [...], "visible_after": 0, "after_page": null}
    set_clock_offset {"seconds": -300}
    advance          {"seconds": 1800}
    now              {}                       -> "2026-11-26T13:00:00.123456-03:00"
    configure        {"token_ttl": 300, "request_limit_per_second": null, ...}
    add_user         {"usuario": "panel", "clave": "x", "api_access": false}
    inject           {"kind": "status", "status": 503, "path": "/api/stock", ...}
    clear_faults     {}
    requests         {}                       -> the request log
    clear_requests   {}
    reset            {}

Numbers (Decimal) travel as strings and datetimes as ISO-8601 strings.
"""

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from .api import Reply, json_reply
from .faults import Fault
from .instance import Instance

Operation = Callable[[Instance, dict[str, Any]], Any]

# name -> (read-only, operation)
OPERATIONS: dict[str, tuple[bool, Operation]] = {
    "generate": (False, lambda i, a: i.generate(**a)),
    "load": (False, lambda i, a: i.load(**a)),
    "items": (True, lambda i, a: i.items(**a)),
    "edit": (False, lambda i, a: i.edit(**a)),
    "set_clock_offset": (False, lambda i, a: i.set_clock_offset(**a)),
    "advance": (False, lambda i, a: i.advance(**a)),
    "now": (True, lambda i, a: i.now(**a).isoformat()),
    "configure": (False, lambda i, a: i.configure(**a)),
    "add_user": (False, lambda i, a: i.add_user(**a)),
    "inject": (False, lambda i, a: i.inject(Fault(**a))),
    "clear_faults": (False, lambda i, a: i.clear_faults(**a)),
    "requests": (True, lambda i, a: i.requests(**a)),
    "clear_requests": (False, lambda i, a: i.clear_requests(**a)),
    "reset": (False, lambda i, a: i.reset(**a)),
}


def _control_error(status: int, kind: str, message: str) -> Reply:
    return json_reply(status, {"error": {"tipo": kind, "mensaje": message}})


def handle(instance: Instance, name: str, method: str, body: bytes) -> Reply:
    """Run one control operation from its HTTP request."""
    entry = OPERATIONS.get(name)
    if entry is None:
        return _control_error(404, "LookupError", f"unknown control operation {name!r}")
    read_only, operation = entry
    if method != "POST" and not (read_only and method == "GET"):
        return _control_error(405, "MethodError", f"{name} needs POST")
    try:
        arguments = json.loads(body) if body.strip() else {}
    except ValueError:
        return _control_error(400, "ValueError", "the body is not JSON")
    if not isinstance(arguments, dict):
        return _control_error(400, "ValueError", "the body must be a JSON object")
    try:
        result = operation(instance, arguments)
    except (TypeError, ValueError) as error:
        return _control_error(400, type(error).__name__, str(error))
    return json_reply(200, {"result": result})


def _to_json(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} to the stand-in: {value!r}")


class StandinClient:
    """Drives a stand-in over HTTP; same operations and signatures as `Standin`."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self.url = base_url.rstrip("/")
        self.timeout = timeout
        # No proxies: the stand-in is local, and an HTTP_PROXY in the environment
        # must not capture the test's control calls.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, name: str, **arguments: Any) -> Any:
        data = json.dumps(arguments, default=_to_json, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(
            f"{self.url}/_control/{name}",
            data=data,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                detail = json.loads(error.read())["error"]
            except (ValueError, KeyError, TypeError):
                raise RuntimeError(f"control {name}: HTTP {error.code}") from None
            # Re-raise what the in-process Standin would have raised.
            exception = {"TypeError": TypeError, "ValueError": ValueError}.get(
                detail.get("tipo"), RuntimeError
            )
            raise exception(detail.get("mensaje", "")) from None
        return payload["result"]

    def generate(self, n: int, seed: int = 1) -> None:
        self._call("generate", n=n, seed=seed)

    def load(self, items: Sequence[Mapping[str, Any]]) -> None:
        self._call("load", items=[dict(item) for item in items])

    def items(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("items")
        return result

    def edit(
        self,
        changes: Sequence[Mapping[str, Any]],
        *,
        visible_after: float = 0,
        after_page: int | None = None,
    ) -> None:
        self._call(
            "edit",
            changes=[dict(change) for change in changes],
            visible_after=visible_after,
            after_page=after_page,
        )

    def set_clock_offset(self, seconds: float) -> None:
        self._call("set_clock_offset", seconds=seconds)

    def advance(self, seconds: float) -> None:
        self._call("advance", seconds=seconds)

    def now(self) -> datetime:
        return datetime.fromisoformat(self._call("now"))

    def configure(self, **settings: Any) -> None:
        self._call("configure", **settings)

    def add_user(self, usuario: str, clave: str, api_access: bool = True) -> None:
        self._call("add_user", usuario=usuario, clave=clave, api_access=api_access)

    def inject(self, fault: Fault) -> None:
        self._call("inject", **fault.to_dict())

    def clear_faults(self) -> None:
        self._call("clear_faults")

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("requests")
        return result

    def clear_requests(self) -> None:
        self._call("clear_requests")

    def reset(self) -> None:
        self._call("reset")
