"""HTTP client for one NonSistemas instance.

One private request loop (`_call`) owns timeouts, retries, rate limits and deadlines;
every transport failure is translated there, once, into an ErpError (`raise ... from
e`, never swallowed). The bearer token lives in an `httpx.Auth` (`_TokenAuth`): it
logs in lazily, renews shortly before the token runs out, and on a 401 logs in again
once and repeats the request. Response bodies go through `_CappedTransport`, which
stops reading past `max_response_bytes` (after gzip decoding, so a small compressed
body cannot expand into gigabytes).

Wire details (paths, field names, formats) are in wire.py. Messages are for a store
admin, in Spanish, and never carry the password or the token.
"""

import email.utils
import errno
import json
import logging
import math
import random
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Generator, Iterator
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import urlsplit

import httpx
from django.utils.translation import gettext_noop

from erp.errors import ErpError, ErrorCode, printable
from erp.sources import FeedStats

from . import wire

if TYPE_CHECKING:
    from erp.pacing import Pacer

logger = logging.getLogger("erp.nonsistemas")

USER_AGENT = "VentasxMayor-NonSistemas/1.0"

# Exponential backoff with full jitter (AWS architecture blog): the n-th retry waits
# uniform(0, min(cap, base * 2**n)), so clients that failed together do not retry
# together.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0

# Transient statuses: the contract's 500/503 and the 502/504 of a proxy in front.
_RETRY_STATUSES = frozenset({500, 502, 503, 504})

# Renew the token this long before `expira_en` runs out (at most), so that a page
# request does not start with a token that expires on its way.
_RENEW_MARGIN = 60.0
# When a login answer does not say how long its token lasts: the contract's minimum.
_ASSUMED_TOKEN_LIFE = 300.0

_MESSAGE_DETAIL_LIMIT = 200

# OpenSSL verify codes: X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH_CODES = frozenset({62, 64})

Endpoint = Literal["version", "login", "api"]


class _Retryable(Exception):
    """A transient failure of one attempt; `_call` decides whether to try again."""

    def __init__(self, error: ErpError, retry_after: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


class _TooLarge(Exception):
    """A response body past the size cap."""


class _TooSlow(Exception):
    """A response body still arriving when the request's deadline passed."""


def _transient(
    code: str,
    message: str,
    cause: BaseException | None = None,
    retry_after: float | None = None,
    params: dict[str, Any] | None = None,
) -> _Retryable:
    error = ErpError(code, message, params=params)
    if cause is not None:
        # The ErpError is raised later, outside this except block: chain it now.
        error.__cause__ = cause
    return _Retryable(error, retry_after)


# ---- transport: size cap and gzip decoding ------------------------------------------


class _CappedStream(httpx.SyncByteStream):
    def __init__(
        self,
        inner: httpx.SyncByteStream,
        *,
        gzip: bool,
        max_bytes: int,
        check_deadline: Callable[[], None],
    ) -> None:
        self._inner = inner
        self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        self._max_bytes = max_bytes
        self._check_deadline = check_deadline

    def __iter__(self) -> Iterator[bytes]:
        total = 0
        for chunk in self._inner:
            self._check_deadline()
            data = self._decode(chunk, self._max_bytes - total)
            total += len(data)
            if total > self._max_bytes:
                raise _TooLarge
            if data:
                yield data
        if self._decoder is not None:
            tail = self._decoder.flush()
            if total + len(tail) > self._max_bytes:
                raise _TooLarge
            if tail:
                yield tail

    def _decode(self, chunk: bytes, remaining: int) -> bytes:
        if self._decoder is None:
            return chunk
        try:
            # Asking for one byte more than allowed tells "exactly at the cap" from
            # "past it" without ever inflating more than the cap.
            return self._decoder.decompress(chunk, remaining + 1)
        except zlib.error as e:
            raise httpx.DecodingError(f"gzip ilegible: {e}") from e

    def close(self) -> None:
        self._inner.close()


class _CappedTransport(httpx.BaseTransport):
    """Wraps the real transport so that every read of a body, including httpx's own
    reads inside the auth flow, is capped and watched by the deadline."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        max_bytes: int,
        check_deadline: Callable[[], None],
    ) -> None:
        self._inner = inner
        self._max_bytes = max_bytes
        self._check_deadline = check_deadline

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        length = response.headers.get("content-length", "")
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if length.isdigit() and int(length) > self._max_bytes:
            response.close()
            raise _TooLarge
        if encoding not in ("", "identity", "gzip", "x-gzip"):
            # Only gzip is asked for; decoding anything else would be uncapped.
            response.close()
            raise httpx.DecodingError(f"codificación no pedida: {encoding}")
        gzip = encoding in ("gzip", "x-gzip")
        headers = response.headers
        if gzip:
            # Decoded here: httpx must not decode a second time, and the length no
            # longer describes the body it will see.
            headers = httpx.Headers(
                [
                    (name, value)
                    for name, value in response.headers.multi_items()
                    if name.lower() not in ("content-encoding", "content-length")
                ]
            )
        stream = response.stream
        if not isinstance(stream, httpx.SyncByteStream):
            response.close()
            raise TypeError("NonSistemasClient needs a synchronous transport")
        return httpx.Response(
            response.status_code,
            headers=headers,
            stream=_CappedStream(
                stream,
                gzip=gzip,
                max_bytes=self._max_bytes,
                check_deadline=self._check_deadline,
            ),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


# ---- auth: the bearer token ---------------------------------------------------------


class _TokenAuth(httpx.Auth):
    """Adds `Authorization: Bearer`, logging in when there is no token or it is about
    to run out; after a 401 it logs in again once and repeats the request. A second
    401 is returned to the caller, which turns it into ErpError(TOKEN).

    Logins are requests of this same flow, so they go through the same transport,
    hooks and error translation; their answers are judged by `accept_login`, which
    raises for anything but a token.
    """

    def __init__(
        self,
        *,
        build_login: Callable[[], httpx.Request],
        accept_login: Callable[[httpx.Response, float], None],
        clock: Callable[[], float],
    ) -> None:
        self._build_login = build_login
        self._accept_login = accept_login
        self._clock = clock
        self.token: str | None = None
        self.renew_at = 0.0

    def remember(self, token: str, expires_in: float | None, sent_at: float) -> None:
        life = expires_in if expires_in is not None else _ASSUMED_TOKEN_LIFE
        # Counted from when the login was sent, which is before the instance started
        # the token's clock; a tenth of its life, at most a minute, to spare.
        self.token = token
        self.renew_at = sent_at + life - min(_RENEW_MARGIN, life / 10)

    def forget(self) -> None:
        self.token = None

    def _login(self) -> Generator[httpx.Request, httpx.Response, None]:
        sent_at = self._clock()
        response = yield self._build_login()
        self._accept_login(response, sent_at)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.token is None or self._clock() >= self.renew_at:
            yield from self._login()
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code != 401:
            return
        # token_vencido / token_invalido (or a 401 without the contract's body: the
        # instance's clock may run ahead of ours): the session is gone.
        logger.info("NonSistemas: el ERP rechazó la sesión (HTTP 401); se inicia otra")
        self.forget()
        yield from self._login()
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class _LoginAuth(httpx.Auth):
    """For an explicit login(): the request is the login itself; judge its answer."""

    def __init__(self, accept_login: Callable[[httpx.Response, float], None], sent_at: float):
        self._accept_login = accept_login
        self._sent_at = sent_at

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        self._accept_login(response, self._sent_at)


# ---- the client ---------------------------------------------------------------------


class NonSistemasClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        transport: httpx.BaseTransport,
        timeout: float = 20.0,
        max_retries: int = 4,
        run_deadline: float | None = None,
        request_deadline: float = 120.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        max_response_bytes: int = 20_000_000,
        clock: Callable[[], float] = time.monotonic,
        pacer: "Pacer | None" = None,
    ) -> None:
        """`transport` is how requests reach the ERP, and has no default on purpose:
        the product passes `erp.url_guard.guarded_transport(...)`, and anything else
        (a test's plain or mock transport) must be chosen explicitly. A default
        would be an unguarded path to whatever address the URL names.

        `run_deadline` is an instant of `clock` (time.monotonic by default) after
        which no request or wait starts. `clock` exists for tests, with `sleep`.

        `pacer` (erp/pacing.py) is told before every request, logins and retries
        included, and may wait there: the host's pace is shared with other runs."""
        if not isinstance(transport, httpx.BaseTransport):
            # Fail closed, before anything is sent: `transport=None` from a caller
            # that lost its guarded transport must not fall back to a plain one.
            raise TypeError(
                "NonSistemasClient needs a transport: pass "
                "erp.url_guard.guarded_transport(...) (or, in tests, an explicit one)"
            )
        # Validates the URL (ErpError MALFORMED_URL) before anything else.
        self._urls = {
            path: wire.endpoint_url(base_url, path)
            for path in (wire.VERSION_PATH, wire.LOGIN_PATH, wire.STOCK_PATH)
        }
        self._base_display = wire.display_url(wire.endpoint_url(base_url, ""))
        self._host = urlsplit(self._urls[wire.VERSION_PATH]).hostname or ""
        self._username = username
        self._password = password
        self._timeout = timeout
        self._max_retries = max(0, max_retries)
        self._run_deadline = run_deadline
        self._request_deadline = request_deadline
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._clock = clock
        self._pacer = pacer
        self._max_response_bytes = max_response_bytes
        self._attempt_end = math.inf
        self._random = random.Random()
        self._login_count = 0
        self._seen_tokens: list[str] = []
        self.stats = FeedStats()

        self._auth = _TokenAuth(
            build_login=self._build_login, accept_login=self._accept_login, clock=clock
        )
        self._http = httpx.Client(
            transport=_CappedTransport(
                transport,
                max_bytes=max_response_bytes,
                check_deadline=self._check_body_deadline,
            ),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Accept-Encoding": "gzip",
            },
            event_hooks={"request": [self._before_request]},
        )

    def __repr__(self) -> str:
        return f"NonSistemasClient({self._base_display!r}, username={self._username!r})"

    # ---- public API ---------------------------------------------------------------

    def version(self) -> str:
        """The instance's version; ErpError(NOT_ERP) when the URL is not NonSistemas'."""

        def attempt() -> str:
            request = self._http.build_request("GET", self._urls[wire.VERSION_PATH])
            return self._handle_version(self._send(request, None))

        return self._call(attempt)

    def login(self) -> None:
        """Log in now, getting a new token even if one is held."""

        def attempt() -> None:
            auth = _LoginAuth(self._accept_login, self._clock())
            self._send(self._build_login(), auth)

        self._call(attempt)

    def stock_page(self, *, desde: datetime | None, pagina: int, por_pagina: int) -> wire.StockPage:
        """One page of GET /api/stock (`desde` inclusive). ValueError for arguments out
        of range (pagina < 1, por_pagina outside 1..MAX_PAGE_SIZE, naive desde)."""
        params = wire.stock_params(desde=desde, pagina=pagina, por_pagina=por_pagina)

        def attempt() -> wire.StockPage:
            request = self._http.build_request("GET", self._urls[wire.STOCK_PATH], params=params)
            body = self._json(self._send(request, self._auth), "api")
            page = wire.parse_stock_page(body)
            if page.pagina != pagina:
                # An instance that ignored `pagina` would make the engine page forever.
                raise ErpError(
                    ErrorCode.ABSURD_RESPONSE,
                    gettext_noop(
                        "Se pidió la página %(asked)s del stock y el ERP respondió la página "
                        "%(got)s. Consultá con tu proveedor de NonSistemas."
                    ),
                    params={"asked": pagina, "got": page.pagina},
                )
            return page

        return self._call(attempt)

    def close(self) -> None:
        try:
            self._http.close()
        finally:
            if self._pacer is not None:
                self._pacer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ---- the request loop ---------------------------------------------------------

    def _call[T](self, attempt: Callable[[], T]) -> T:
        """One logical request: its attempts, the waits between them, and the error of
        the last cause when they run out.

        `attempt` builds a fresh request, sends it and judges the answer; it raises
        _Retryable for a transient fault and ErpError for anything else.
        """
        budget_end = self._clock() + self._request_deadline
        attempts = self._max_retries + 1
        last: _Retryable | None = None
        for number in range(1, attempts + 1):
            if last is not None:
                self._pause(last, number, attempts, budget_end)
                self.stats.retries += 1
            run_end = self._run_deadline if self._run_deadline is not None else math.inf
            self._attempt_end = min(budget_end, run_end)
            try:
                return attempt()
            except _Retryable as retryable:
                last = retryable
        assert last is not None
        raise self._exhausted(last, attempts)

    def _pause(self, last: _Retryable, number: int, attempts: int, budget_end: float) -> None:
        """Wait before attempt `number` (2, 3, ...), unless a deadline comes first."""
        if last.retry_after is not None:
            delay = min(last.retry_after, self._max_retry_after)
        else:
            ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (number - 2))
            delay = self._random.uniform(0, ceiling)
        now = self._clock()
        if self._run_deadline is not None and now + delay >= self._run_deadline:
            raise self._deadline_error(last.error) from last.error
        if now + delay >= budget_end:
            raise self._exhausted(last, number - 1)
        logger.warning(
            "NonSistemas: %s [%s]; nuevo intento (%d de %d) en %.1f s",
            last.error.message,
            last.error.code,
            number,
            attempts,
            delay,
        )
        self._sleep(delay)

    def _exhausted(self, last: _Retryable, attempts: int) -> ErpError:
        if attempts == 1:
            message = gettext_noop("%(error)s Se intentó una vez.")
        else:
            message = gettext_noop("%(error)s Se intentó %(times)s veces.")
        error = ErpError(last.error.code, message, params={"error": last.error, "times": attempts})
        error.__cause__ = last.error
        return error

    def _deadline_error(self, last: ErpError | None) -> ErpError:
        if last is None:
            return ErpError(
                ErrorCode.DEADLINE,
                gettext_noop(
                    "Se alcanzó el tiempo máximo de la actualización esperando al ERP; "
                    "seguirá en la próxima."
                ),
            )
        return ErpError(
            ErrorCode.DEADLINE,
            gettext_noop(
                "Se alcanzó el tiempo máximo de la actualización esperando al ERP; "
                "seguirá en la próxima. Último problema: %(error)s"
            ),
            params={"error": last},
        )

    def _before_request(self, request: httpx.Request) -> None:
        # A request hook: runs for every request sent, logins of the auth flow too.
        if self._pacer is not None:
            # The host's shared pace (erp/pacing.py): may wait for a place or a slot.
            self._pacer.before_request()
        now = self._clock()
        if self._run_deadline is not None and now >= self._run_deadline:
            raise self._deadline_error(None)
        self.stats.requests += 1
        remaining = self._attempt_end - now
        if remaining < self._timeout:
            # No single wait may outlive the deadlines (httpx timeouts are per read).
            request.extensions["timeout"] = httpx.Timeout(max(remaining, 0.01)).as_dict()

    def _check_body_deadline(self) -> None:
        if self._clock() > self._attempt_end:
            raise _TooSlow

    def _send(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        """One attempt, body read; every failure of the transport becomes an ErpError
        (or a _Retryable carrying one), chained to its cause."""
        try:
            response = self._http.send(request, auth=auth)
        except (ErpError, _Retryable):
            raise
        except _TooLarge as e:
            raise ErpError(
                ErrorCode.ABSURD_RESPONSE,
                gettext_noop(
                    "El ERP envió una respuesta de más de "
                    "%(megabytes)s MB y se dejó de leer. "
                    "Consultá con tu proveedor de NonSistemas."
                ),
                params={"megabytes": f"{self._max_response_bytes / 1_000_000:g}"},
            ) from e
        except _TooSlow as e:
            raise _transient(
                ErrorCode.TIMEOUT,
                gettext_noop("El ERP envía la respuesta demasiado despacio y se agotó el tiempo."),
                e,
            ) from e
        except httpx.TimeoutException as e:
            raise _transient(
                ErrorCode.TIMEOUT,
                gettext_noop(
                    "El ERP no respondió a tiempo (más de %(seconds)s s). "
                    "Puede estar sobrecargado o inaccesible."
                ),
                e,
                params={"seconds": f"{self._timeout:g}"},
            ) from e
        except httpx.ConnectError as e:
            raise self._connect_error(e) from e
        except (
            httpx.ReadError,
            httpx.WriteError,
            httpx.RemoteProtocolError,
            httpx.CloseError,
        ) as e:
            raise _transient(
                ErrorCode.CONNECTION,
                gettext_noop(
                    "Se cortó la conexión con el ERP antes de recibir la respuesta completa."
                ),
                e,
            ) from e
        except httpx.ProxyError as e:
            raise _transient(
                ErrorCode.CONNECTION,
                gettext_noop("Falló la conexión a través del proxy hacia el ERP."),
                e,
            ) from e
        except httpx.DecodingError as e:
            raise _transient(
                ErrorCode.BAD_RESPONSE,
                gettext_noop("El ERP envió una respuesta comprimida ilegible."),
                e,
            ) from e
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            raise ErpError(
                ErrorCode.MALFORMED_URL,
                gettext_noop("La URL del ERP no es válida: debe empezar con https:// o http://."),
                permanent=True,
            ) from e
        except httpx.HTTPError as e:
            # LocalProtocolError and the like: a fault of this client, not of the ERP.
            raise ErpError(
                ErrorCode.INTERNAL,
                gettext_noop("Error interno al hablar con el ERP; avisá a soporte."),
            ) from e
        return response

    def _connect_error(self, e: httpx.ConnectError) -> ErpError | _Retryable:
        """A failed connection, diagnosed from the OS or TLS error underneath it
        (httpx.ConnectError <- httpcore.ConnectError <- socket/ssl error)."""
        host = self._host
        gai = _find_cause(e, socket.gaierror)
        if gai is not None:
            if gai.errno == socket.EAI_AGAIN:
                # The resolver could not answer right now: not proof the name is wrong.
                return _transient(
                    ErrorCode.DNS,
                    gettext_noop(
                        "No se pudo averiguar la dirección de «%(host)s»: el DNS no responde. "
                        "Revisá la conexión a internet del servidor."
                    ),
                    e,
                    params={"host": host},
                )
            return _chained(
                ErpError(
                    ErrorCode.DNS,
                    gettext_noop(
                        "El nombre «%(host)s» no existe. Revisá cómo está escrito el servidor en "
                        "la URL."
                    ),
                    params={"host": host},
                    permanent=True,
                ),
                e,
            )
        cert = _find_cause(e, ssl.SSLCertVerificationError)
        if cert is not None:
            verify_message = str(cert.verify_message or "").lower()
            if cert.verify_code in _NAME_MISMATCH_CODES or "mismatch" in verify_message:
                message = gettext_noop(
                    "El certificado de seguridad del servidor no es válido para «%(host)s». "
                    "Verificá que la URL tenga el nombre exacto que te dio tu proveedor de "
                    "NonSistemas; si es ese, el proveedor tiene que corregir el certificado."
                )
            else:
                message = gettext_noop(
                    "El certificado de seguridad de «%(host)s» no es de confianza (autofirmado, "
                    "vencido o de una entidad no reconocida). Tu proveedor de NonSistemas "
                    "tiene que instalar un certificado válido."
                )
            return _chained(
                ErpError(ErrorCode.TLS, message, permanent=True, params={"host": host}), e
            )
        if _find_cause(e, ssl.SSLError) is not None:
            return _chained(
                ErpError(
                    ErrorCode.TLS,
                    gettext_noop(
                        "No se pudo establecer una conexión segura con «%(host)s». Preguntale a tu "
                        "proveedor de NonSistemas si la URL empieza con https o con http."
                    ),
                    params={"host": host},
                    permanent=True,
                ),
                e,
            )
        refused = _find_cause(e, OSError)
        if isinstance(refused, ConnectionRefusedError) or (
            refused is not None and refused.errno == errno.ECONNREFUSED
        ):
            return _chained(
                ErpError(
                    ErrorCode.REFUSED,
                    gettext_noop(
                        "Nadie responde en %(address)s: la conexión fue rechazada. Revisá "
                        "la URL, el puerto y que el servidor de NonSistemas esté encendido."
                    ),
                    params={"address": self._address()},
                ),
                e,
            )
        return _transient(
            ErrorCode.CONNECTION,
            gettext_noop(
                "No se pudo conectar con %(address)s. Revisá la URL y la conexión a "
                "internet del servidor."
            ),
            e,
            params={"address": self._address()},
        )

    def _address(self) -> str:
        parts = urlsplit(self._urls[wire.VERSION_PATH])
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{self._host}:{port}"

    # ---- judging answers ----------------------------------------------------------

    def _handle_version(self, response: httpx.Response) -> str:
        if not response.is_success:
            self._raise_for_status(response, "version")
        try:
            body = _decode_json(response)
        except ValueError as e:
            if _is_json_type(response):
                # Looked like the API but arrived garbled: worth another try.
                raise _transient(
                    ErrorCode.BAD_RESPONSE, gettext_noop("El ERP envió una respuesta ilegible."), e
                ) from e
            raise self._not_erp() from e
        version = wire.parse_version(body)
        if version is None:
            raise self._not_erp()
        return version

    def _json(self, response: httpx.Response, endpoint: Endpoint) -> object:
        if not response.is_success:
            self._raise_for_status(response, endpoint)
        try:
            return _decode_json(response)
        except ValueError as e:
            raise _transient(
                ErrorCode.BAD_RESPONSE,
                gettext_noop(
                    "El ERP envió una respuesta ilegible (no es JSON válido o llegó cortada)."
                ),
                e,
            ) from e

    def _build_login(self) -> httpx.Request:
        return self._http.build_request(
            "POST",
            self._urls[wire.LOGIN_PATH],
            json=wire.login_body(self._username, self._password),
        )

    def _accept_login(self, response: httpx.Response, sent_at: float) -> None:
        # Called inside the auth flow: httpx has not read the body yet.
        response.read()
        answer = wire.parse_login(self._json(response, "login"))
        if answer is None:
            # Well-formed JSON without a usable token: asking again gives the same.
            raise ErpError(
                ErrorCode.BAD_RESPONSE,
                gettext_noop(
                    "El ERP respondió el inicio de sesión sin un token válido. Consultá con tu "
                    "proveedor de NonSistemas."
                ),
            )
        if self._login_count:
            self.stats.relogins += 1
        self._login_count += 1
        self._seen_tokens.append(answer.token)
        self._auth.remember(answer.token, answer.expires_in, sent_at)
        logger.info("NonSistemas: sesión iniciada en %s", self._base_display)

    def _raise_for_status(self, response: httpx.Response, endpoint: Endpoint) -> None:
        status = response.status_code
        codigo, mensaje = self._error_body(response)
        detail = f" ({codigo})" if codigo else ""
        if 300 <= status < 400:
            location = response.headers.get("location")
            target = (
                wire.display_url(str(response.url.join(location))) if location else "otra dirección"
            )
            raise ErpError(
                ErrorCode.NOT_ERP,
                gettext_noop(
                    "La URL %(url)s redirige a %(target)s. Escribí en el campo URL la "
                    "dirección final que te dio tu proveedor de NonSistemas."
                ),
                params={"url": self._base_display, "target": target},
                permanent=True,
            )
        if status == 429:
            raise _transient(
                ErrorCode.RATE_LIMITED,
                gettext_noop("El ERP pidió esperar: demasiadas solicitudes (HTTP 429)."),
                retry_after=self._retry_after(response),
            )
        if status in _RETRY_STATUSES:
            raise _transient(
                ErrorCode.SERVER_ERROR,
                gettext_noop(
                    "El ERP está fallando (HTTP %(status)s%(detail)s). Suele ser pasajero; si se "
                    "repite, consultá con tu proveedor de NonSistemas."
                ),
                params={"status": status, "detail": detail},
                retry_after=self._retry_after(response),
            )
        if status == 408:
            raise _transient(
                ErrorCode.TIMEOUT,
                gettext_noop("El ERP no recibió la consulta a tiempo (HTTP 408)."),
            )
        if status >= 500:
            raise ErpError(
                ErrorCode.SERVER_ERROR,
                gettext_noop(
                    "El ERP respondió con un error (HTTP %(status)s%(detail)s). Consultá con tu "
                    "proveedor de NonSistemas."
                ),
                params={"status": status, "detail": detail},
            )
        if endpoint == "version" or status in (404, 405, 410):
            raise self._not_erp()
        if endpoint == "login" and status == 401:
            raise ErpError(
                ErrorCode.BAD_CREDENTIALS,
                gettext_noop(
                    "NonSistemas rechazó el usuario o la contraseña de la API. Revisalos y "
                    "volvé a guardarlos."
                ),
                permanent=True,
            )
        if status == 401:
            # The auth flow already logged in again once and repeated the request.
            raise ErpError(
                ErrorCode.TOKEN,
                gettext_noop(
                    "El ERP rechazó la sesión aun recién iniciada (HTTP 401%(detail)s). Si se "
                    "repite, consultá con tu proveedor de NonSistemas."
                ),
                params={"detail": detail},
            )
        if status == 403:
            raise ErpError(
                ErrorCode.NO_API_ACCESS,
                gettext_noop(
                    "El usuario existe en NonSistemas pero no tiene habilitado el acceso a la API. "
                    "Pedile al administrador de NonSistemas que lo habilite, o usá un usuario de "
                    "API."
                ),
                permanent=True,
            )
        if status == 400:
            said = f": {mensaje}" if mensaje else ""
            raise ErpError(
                ErrorCode.INTERNAL,
                gettext_noop(
                    "El ERP rechazó la consulta por un parámetro inválido%(said)s. Es una falla de "
                    "la integración: avisá a soporte."
                ),
                params={"said": said},
            )
        raise ErpError(
            ErrorCode.BAD_RESPONSE,
            gettext_noop("El ERP respondió con un estado inesperado (HTTP %(status)s%(detail)s)."),
            params={"status": status, "detail": detail},
        )

    def _not_erp(self) -> ErpError:
        return ErpError(
            ErrorCode.NOT_ERP,
            gettext_noop(
                "La URL %(url)s responde, pero no es una API de NonSistemas. "
                "Verificá la URL que te dio tu proveedor de NonSistemas."
            ),
            params={"url": self._base_display},
            permanent=True,
        )

    def _error_body(self, response: httpx.Response) -> tuple[str | None, str | None]:
        try:
            body = _decode_json(response)
        except ValueError:
            return None, None
        codigo, mensaje = wire.parse_error_body(body)
        return (
            self._scrub(codigo) if codigo else None,
            self._scrub(mensaje) if mensaje else None,
        )

    def _scrub(self, text: str) -> str:
        """Text the ERP sent, made safe to show: a proxy may echo the request back."""
        for secret in (self._password, *self._seen_tokens):
            if secret:
                # As sent (inside JSON, escaped either way) and as typed.
                forms = {
                    json.dumps(secret)[1:-1],
                    json.dumps(secret, ensure_ascii=False)[1:-1],
                    secret,
                }
                for form in sorted(forms, key=len, reverse=True):
                    text = text.replace(form, "***")
        text = " ".join(printable(text).split())
        if len(text) > _MESSAGE_DETAIL_LIMIT:
            text = text[: _MESSAGE_DETAIL_LIMIT - 1] + "…"
        return text

    def _retry_after(self, response: httpx.Response) -> float | None:
        """Seconds to wait from Retry-After (delay-seconds or HTTP-date); None when
        absent or unreadable (the caller backs off instead)."""
        value = response.headers.get("retry-after", "").strip()
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            pass
        else:
            return max(0.0, seconds) if math.isfinite(seconds) else None
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        # The instance's clock is its own: measure against its Date header when it
        # sent one, not against ours, which may be minutes apart.
        reference = None
        date_header = response.headers.get("date")
        if date_header:
            try:
                reference = email.utils.parsedate_to_datetime(date_header)
            except (TypeError, ValueError):
                reference = None
        if reference is None or reference.tzinfo is None or moment.tzinfo is None:
            return max(0.0, moment.timestamp() - time.time())
        return max(0.0, (moment - reference).total_seconds())


def _decode_json(response: httpx.Response) -> object:
    """The body as JSON; ValueError (JSONDecodeError, UnicodeDecodeError) when not.

    Numbers with a fraction (legacy prices, `18250.5`) and NaN/Infinity are decoded
    as Decimal, never float: a float cannot hold 1234.565 or 0.3 exactly.
    """
    content = response.content
    if not content.strip():
        raise ValueError("cuerpo vacío")
    try:
        return json.loads(content, parse_float=Decimal, parse_constant=Decimal)
    except UnicodeDecodeError:
        # Its repr carries the whole body, which must not travel in a cause chain.
        raise ValueError("el cuerpo no es texto UTF-8") from None


def _is_json_type(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    return "json" in content_type


def _find_cause[E: BaseException](error: BaseException, kind: type[E]) -> E | None:
    """The first exception of type `kind` down the chain of causes."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _chained(error: ErpError, cause: BaseException) -> ErpError:
    error.__cause__ = cause
    return error
