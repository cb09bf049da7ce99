"""One simulated NonSistemas instance: its catalog, users, tokens, limits and faults.

`Instance` holds all mutable state behind one re-entrant lock and offers two faces:
the control operations the tests call (`generate`, `edit`, `advance`, ...), and the
pieces the API handlers need (`login`, `authenticate`, `page_served`, ...). It knows
nothing about HTTP.
"""

import dataclasses
import json
import secrets
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from hmac import compare_digest
from typing import Any

from .catalog import Catalog, FieldChanges, changes_from_dicts, item_from_dict
from .clock import StandinClock, format_precise, parse_instant
from .errors import ApiError
from .faults import Fault, FaultQueue
from .generation import generate
from .ratelimit import SlidingWindowLimiter

# The request log is for tests and benchmarks to inspect; past this many entries the
# oldest are dropped so that a long benchmark does not grow memory without bound.
REQUEST_LOG_LIMIT = 100_000


@dataclass
class Config:
    """What `configure()` can change; these are the defaults of a 4.3 instance."""

    token_ttl: int = 1800
    login_limit_per_minute: int | None = 5
    request_limit_per_second: int | None = 10
    legacy_numbers: bool = False
    version: str = "4.3.1"
    retry_after: int | None = None  # fixed Retry-After for 429s; None: time to wait


def _check_config(values: Mapping[str, Any]) -> None:
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = set(values) - known
    if unknown:
        raise TypeError(f"unknown settings {sorted(unknown)}; known: {sorted(known)}")

    def positive_int(name: str, value: Any, *, optional: bool, minimum: int = 1) -> None:
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")

    for name, value in values.items():
        if name == "token_ttl":
            positive_int(name, value, optional=False)
        elif name in ("login_limit_per_minute", "request_limit_per_second"):
            positive_int(name, value, optional=True)
        elif name == "retry_after":
            positive_int(name, value, optional=True, minimum=0)
        elif name == "legacy_numbers" and not isinstance(value, bool):
            raise ValueError(f"legacy_numbers must be true or false, got {value!r}")
        elif name == "version" and not isinstance(value, str):
            raise ValueError(f"version must be a string, got {value!r}")


@dataclass
class _User:
    clave: str
    api_access: bool


@dataclass
class _Token:
    usuario: str
    expires_at: float  # on the stand-in clock


@dataclass
class _DeferredEdit:
    """An edit waiting for the `due_at_page`-th successful stock page to be served."""

    due_at_page: int
    changes: dict[str, FieldChanges]
    visible_after: float


class Instance:
    def __init__(self, user: str, password: str, settings: Mapping[str, Any] | None = None):
        """An instance with one API user; `settings` is its configuration at start,
        which `reset()` returns to."""
        settings = dict(settings or {})
        _check_config(settings)
        self.user = user
        self.password = password
        self.baseline = dataclasses.replace(Config(), **settings)
        # Re-entrant so that API handlers can hold it around several calls below.
        self.lock = threading.RLock()
        self.clock = StandinClock()
        self._reset_locked()

    def _reset_locked(self) -> None:
        self.config = dataclasses.replace(self.baseline)
        self.catalog = Catalog()
        self.catalog.set_legacy_numbers(self.config.legacy_numbers)
        self.faults = FaultQueue()
        self._users = {self.user: _User(self.password, True)}
        self._tokens: dict[str, _Token] = {}
        self._deferred: list[_DeferredEdit] = []
        self._pages_served = 0
        self._log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
        self._rebuild_limiters()
        self.clock.set_offset(0.0)

    def _rebuild_limiters(self) -> None:
        per_minute = self.config.login_limit_per_minute
        per_second = self.config.request_limit_per_second
        self._login_limiter = SlidingWindowLimiter(per_minute, 60.0) if per_minute else None
        self._request_limiter = SlidingWindowLimiter(per_second, 1.0) if per_second else None

    # ---- control operations -------------------------------------------------------

    def generate(self, n: int, seed: int = 1) -> None:
        items = generate(n, seed)
        with self.lock:
            self._deferred.clear()
            self.catalog.replace(items)

    def load(self, items: Sequence[Mapping[str, Any]]) -> None:
        now = int(self.clock.epoch() // 1)
        converted = []
        for data in items:
            raw = data.get("modificado")
            modificado = now if raw is None else int(parse_instant(raw) // 1)
            converted.append(item_from_dict(data, modificado))
        with self.lock:
            self._deferred.clear()
            self.catalog.replace(converted)

    def items(self) -> list[dict[str, Any]]:
        with self.lock:
            self.catalog.apply_due(self.clock.epoch())
            encoded = self.catalog.encoded_all()
        result: list[dict[str, Any]] = json.loads(b"[" + b", ".join(encoded) + b"]")
        return result

    def edit(
        self,
        changes: Sequence[Mapping[str, Any]],
        *,
        visible_after: float = 0,
        after_page: int | None = None,
    ) -> None:
        normalized = changes_from_dicts(changes)
        if visible_after < 0:
            raise ValueError("visible_after must be >= 0")
        if after_page is not None and (isinstance(after_page, bool) or after_page < 1):
            raise ValueError("after_page must be >= 1")
        if not normalized:
            return
        with self.lock:
            self.catalog.apply_due(self.clock.epoch())
            for codigo, fields in normalized.items():
                if "stock" not in fields and not self._knows(codigo):
                    raise ValueError(f"{codigo!r} is a new item: give at least its stock")
            if after_page is not None:
                due = self._pages_served + after_page
                self._deferred.append(_DeferredEdit(due, normalized, visible_after))
            else:
                self._commit(normalized, visible_after)

    def _knows(self, codigo: str) -> bool:
        return self.catalog.knows(codigo) or any(codigo in d.changes for d in self._deferred)

    def _commit(self, changes: dict[str, FieldChanges], visible_after: float) -> None:
        # One modificado for the whole edit, to the second, like a bulk edit.
        modificado = int(self.clock.epoch() // 1)
        if visible_after > 0:
            self.catalog.schedule(changes, modificado, modificado + visible_after)
        else:
            self.catalog.apply(changes, modificado)

    def set_clock_offset(self, seconds: float) -> None:
        self.clock.set_offset(seconds)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def now(self) -> datetime:
        return self.clock.now()

    def configure(self, **settings: Any) -> None:
        _check_config(settings)
        with self.lock:
            self.config = dataclasses.replace(self.config, **settings)
            self.catalog.set_legacy_numbers(self.config.legacy_numbers)
            if {"login_limit_per_minute", "request_limit_per_second"} & set(settings):
                self._rebuild_limiters()

    def add_user(self, usuario: str, clave: str, api_access: bool = True) -> None:
        if not isinstance(usuario, str) or not isinstance(clave, str):
            raise ValueError("usuario and clave must be strings")
        with self.lock:
            self._users[usuario] = _User(clave, bool(api_access))

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.add(fault)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(entry, query=dict(entry["query"])) for entry in self._log]

    def clear_requests(self) -> None:
        with self.lock:
            self._log.clear()

    def reset(self) -> None:
        with self.lock:
            self._reset_locked()

    # ---- used by the API handlers -------------------------------------------------

    def _too_many(self, limiter: SlidingWindowLimiter | None, key: str) -> None:
        if limiter is None:
            return
        wait = limiter.hit(key)
        if wait is not None:
            retry_after = self.config.retry_after
            raise ApiError(
                "demasiadas_solicitudes", retry_after=wait if retry_after is None else retry_after
            )

    def login(self, usuario: str, clave: str) -> tuple[str, int]:
        """A new token and its lifetime in seconds, or ApiError."""
        with self.lock:
            # Counted per usuario as given, before checking it, as brute-force
            # protection does: failed attempts use up the allowance too.
            self._too_many(self._login_limiter, usuario)
            user = self._users.get(usuario)
            if user is None or not compare_digest(user.clave.encode(), clave.encode()):
                raise ApiError("credenciales_invalidas")
            if not user.api_access:
                raise ApiError("acceso_api_deshabilitado")
            token = secrets.token_hex(16)
            ttl = self.config.token_ttl
            self._tokens[token] = _Token(usuario, self.clock.epoch() + ttl)
            return token, ttl

    def authenticate(self, authorization: str | None) -> str:
        """The usuario owning the bearer token, or ApiError."""
        scheme, _, token = (authorization or "").partition(" ")
        with self.lock:
            record = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if record is None:
                raise ApiError("token_invalido")
            if self.clock.epoch() >= record.expires_at:
                raise ApiError("token_vencido")
            return record.usuario

    def check_request_limit(self, usuario: str) -> None:
        with self.lock:
            self._too_many(self._request_limiter, usuario)

    def page_served(self) -> None:
        """Count a successful stock page; apply the edits waiting for it."""
        with self.lock:
            self._pages_served += 1
            due = [d for d in self._deferred if d.due_at_page <= self._pages_served]
            if due:
                self._deferred = [d for d in self._deferred if d.due_at_page > self._pages_served]
                for deferred in due:
                    self._commit(deferred.changes, deferred.visible_after)

    def record(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        status: int | None,
        fault: Fault | None,
    ) -> None:
        entry = {
            "method": method,
            "path": path,
            "query": dict(query),
            "status": status,
            "at": format_precise(self.clock.epoch()),
            "fault": fault.kind if fault else None,
        }
        with self.lock:
            self._log.append(entry)
