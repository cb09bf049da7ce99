"""The NonSistemas API endpoints, and the faults that can replace their answers.

`handle(instance, request)` turns one API request (path already stripped of the
instance's prefix) into a `Reply`. It knows the contract's paths, parameters, and
formats; it knows nothing about sockets.
"""

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .clock import format_timestamp, parse_instant
from .errors import ApiError, ErrorBody, error_body_for_status
from .faults import Fault
from .instance import Instance

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"

DEFAULT_POR_PAGINA = 500
MAX_POR_PAGINA = 1000
_DIGITS = re.compile(r"[0-9]{1,18}")


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False  # drop the connection with a TCP RST instead of answering


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str  # relative to the instance's prefix, e.g. "/api/stock"
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # names in lower case
    body: bytes = b""
    # False for a path outside the instance's prefix: logged, but never an endpoint.
    under_prefix: bool = True

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Reply(status, body, headers=headers or {})


def error_reply(error: ApiError) -> Reply:
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    return Reply(error.status, ErrorBody(error.codigo, error.mensaje).encode(), headers=headers)


def _version(instance: Instance, request: ApiRequest, count_page: bool) -> Reply:
    return json_reply(200, {"producto": "NonSistemas", "version": instance.config.version})


def _login(instance: Instance, request: ApiRequest, count_page: bool) -> Reply:
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("parametro_invalido", "El cuerpo no es JSON válido") from None
    if not isinstance(data, dict):
        raise ApiError("parametro_invalido", "El cuerpo debe ser un objeto JSON")
    usuario, clave = data.get("usuario"), data.get("clave")
    if not isinstance(usuario, str) or not isinstance(clave, str):
        raise ApiError("parametro_invalido", "Faltan usuario y clave")
    token, ttl = instance.login(usuario, clave)
    return json_reply(200, {"token": token, "tipo": "Bearer", "expira_en": ttl})


def _int_param(request: ApiRequest, name: str, default: int, maximum: int) -> int:
    text = request.param(name)
    if text is None:
        return default
    # Digits only: a real instance rejects "+1", " 1" and "1.0" as well.
    value = int(text) if _DIGITS.fullmatch(text) else 0
    if not 1 <= value <= maximum:
        raise ApiError("parametro_invalido", f"{name} debe ser un entero entre 1 y {maximum}")
    return value


def _stock(instance: Instance, request: ApiRequest, count_page: bool) -> Reply:
    with instance.lock:
        now = instance.clock.epoch()
        # Late commits become visible lazily, before anything is read.
        instance.catalog.apply_due(now)
        usuario = instance.authenticate(request.headers.get("authorization"))
        instance.check_request_limit(usuario)

        pagina = _int_param(request, "pagina", 1, 10**18)
        por_pagina = _int_param(request, "por_pagina", DEFAULT_POR_PAGINA, MAX_POR_PAGINA)
        desde_text = request.param("desde")
        desde = None
        if desde_text is not None:
            try:
                desde = parse_instant(desde_text)
            except ValueError:
                raise ApiError(
                    "parametro_invalido", "desde debe ser una fecha y hora ISO-8601"
                ) from None

        page = instance.catalog.page(desde, pagina, por_pagina)
        head = (
            f'{{"pagina": {pagina}, "por_pagina": {por_pagina}, '
            f'"total_items": {page.total_items}, '
            f'"total_paginas": {math.ceil(page.total_items / por_pagina)}, '
            f'"hora_servidor": "{format_timestamp(now)}", "items": ['
        )
        body = head.encode("ascii") + b", ".join(page.items) + b"]}"
        if count_page and request.method == "GET":
            # Still under the lock: an edit waiting for this page is applied before
            # any other request can read the catalog, so page N is the data before
            # it and page N+1 the data after it, whichever connection asks.
            instance.page_served()
    return Reply(200, body)


Handler = Callable[[Instance, ApiRequest, bool], Reply]
ROUTES: dict[str, tuple[str, Handler]] = {
    "/api/version": ("GET", _version),
    "/api/login": ("POST", _login),
    "/api/stock": ("GET", _stock),
}


def _route(instance: Instance, request: ApiRequest, count_page: bool) -> Reply:
    route = ROUTES.get(request.path) if request.under_prefix else None
    if route is None:
        return error_reply(ApiError("no_encontrado", f"No existe {request.path}"))
    method, handler = route
    allowed = {method, "HEAD"} if method == "GET" else {method}
    if request.method not in allowed:
        reply = error_reply(ApiError("metodo_no_permitido"))
        reply.headers["Allow"] = ", ".join(sorted(allowed))
        return reply
    try:
        return handler(instance, request, count_page)
    except ApiError as error:
        return error_reply(error)


_PROXY_PAGE = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_PROXY_PHRASES = {
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
_OTHER_PRODUCT_PAGE = (
    "<!DOCTYPE html>\n<html lang='es'><head><meta charset='utf-8'>"
    "<title>Gestionar Plus - Iniciar sesión</title></head>\n<body><h1>Gestionar Plus</h1>"
    "<form method='post' action='/login'><input name='user'><input name='pass' "
    "type='password'><button>Ingresar</button></form></body></html>\n"
)
_NOT_JSON = b'{"pagina": 1, "items": [{"codigo": "ACE-0001", stock: 340.000,,]<!-- -->'


def _faulty_reply(fault: Fault) -> Reply | None:
    """The reply that replaces the normal one, or None when the normal one is needed."""
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    if fault.kind == "status":
        status = fault.status or 500
        if status == 429 and "Retry-After" not in headers:
            # The contract promises Retry-After with every 429.
            headers["Retry-After"] = "1"
        return Reply(status, error_body_for_status(status).encode(), headers=headers)
    if fault.kind == "html":
        status = fault.status or 502
        phrase = _PROXY_PHRASES.get(status, "Error")
        page = _PROXY_PAGE.format(status=status, phrase=phrase).encode()
        return Reply(status, page, HTML, headers)
    if fault.kind == "reset":
        return Reply(0, reset=True)
    if fault.kind == "malformed_json":
        return Reply(200, _NOT_JSON)
    if fault.kind == "token_expired":
        return error_reply(ApiError("token_vencido"))
    if fault.kind == "not_nonsistemas":
        return Reply(200, _OTHER_PRODUCT_PAGE.encode(), HTML)
    return None  # delay, truncated_json: they need the normal answer


def handle(instance: Instance, request: ApiRequest) -> Reply:
    with instance.lock:
        fault = instance.faults.take(request.path)
    if fault is not None and fault.kind == "delay":
        # Outside the lock: a slow answer must not stall other clients.
        time.sleep(fault.delay)
    reply = _faulty_reply(fault) if fault is not None else None
    if reply is None:
        # Only an intact page counts for edits waiting for "after page N".
        intact = fault is None or fault.kind == "delay"
        reply = _route(instance, request, intact)
        if fault is not None and fault.kind == "truncated_json":
            reply.body = reply.body[: len(reply.body) // 2]
    query = {name: values[0] for name, values in request.query.items() if values}
    status = None if reply.reset else reply.status
    instance.record(request.method, request.path, query, status, fault)
    return reply
