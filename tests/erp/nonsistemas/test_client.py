"""NonSistemasClient against the stand-in over real HTTP on 127.0.0.1.

Waits go through a fake `sleep` that records them and moves a fake clock, so the
tests never wait for real except for the one real timeout (a fraction of a second).
A few cases the stand-in cannot produce (redirects, gzip bombs, TLS, HTTP-date
Retry-After, an error body echoing the password) use httpx.MockTransport or a tiny
local TLS server.
"""

import datetime as dt
import gzip
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from erp.engine import price_from_erp
from erp.errors import ErpError, ErrorCode
from erp.nonsistemas import wire
from erp.nonsistemas.client import USER_AGENT, NonSistemasClient
from erp.url_guard import guarded_transport
from nonsistemas_standin import Fault, Standin
from tests.conftest import ERP_PASSWORD, ERP_USER
from tests.pki import Pki

ART = dt.timezone(dt.timedelta(hours=-3))


class FakeTime:
    """A monotonic clock that only moves when the client sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.waits.append(seconds)
        self.now += seconds


class Recording(httpx.BaseTransport):
    """The real transport, remembering the requests sent (to learn the tokens)."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    def tokens(self) -> set[str]:
        found = set()
        for request in self.sent:
            header = request.headers.get("authorization", "")
            if header.startswith("Bearer "):
                found.add(header.removeprefix("Bearer "))
        return found


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


MakeClient = Callable[..., NonSistemasClient]


@pytest.fixture
def make_client(standin: Standin, fake_time: FakeTime) -> Iterator[MakeClient]:
    clients: list[NonSistemasClient] = []

    def make(url: str | None = None, **options: Any) -> NonSistemasClient:
        options.setdefault("sleep", fake_time.sleep)
        options.setdefault("clock", fake_time.clock)
        # The product's own transport (the stand-in is on 127.0.0.1, so allow_local);
        # tests that need another one pass it explicitly.
        options.setdefault("transport", guarded_transport(allow_local=True))
        username = options.pop("username", ERP_USER)
        password = options.pop("password", ERP_PASSWORD)
        client = NonSistemasClient(url or standin.url, username, password, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _log(standin: Standin, path: str | None = None) -> list[tuple[str, str, int | None]]:
    return [
        (entry["method"], entry["path"], entry["status"])
        for entry in standin.requests()
        if path is None or entry["path"] == path
    ]


def _raises(call: Callable[[], object]) -> ErpError:
    with pytest.raises(ErpError) as caught:
        call()
    return caught.value


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _page(client: NonSistemasClient, pagina: int = 1, **options: Any) -> wire.StockPage:
    options.setdefault("desde", None)
    options.setdefault("por_pagina", 10)
    return client.stock_page(pagina=pagina, **options)


# ---- transport ------------------------------------------------------------------------


def test_without_a_transport_nothing_is_sent(standin: Standin) -> None:
    """No unguarded fallback: a caller that forgets the guarded transport (or loses it
    on the way, passing None) gets an error before any connection, not a plain httpx
    transport that would reach whatever address the URL names."""
    with pytest.raises(TypeError, match="transport"):
        NonSistemasClient(standin.url, ERP_USER, ERP_PASSWORD)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="guarded_transport"):
        NonSistemasClient(standin.url, ERP_USER, ERP_PASSWORD, transport=None)  # type: ignore[arg-type]
    # The product's transport, configured as in production, refuses this address
    # (the stand-in listens on 127.0.0.1) before connecting.
    with NonSistemasClient(
        standin.url, ERP_USER, ERP_PASSWORD, transport=guarded_transport(allow_local=False)
    ) as client:
        error = _raises(client.version)
    assert error.code == ErrorCode.URL_NOT_ALLOWED
    assert standin.requests() == []


# ---- version --------------------------------------------------------------------------


def test_version(standin: Standin, make_client: MakeClient) -> None:
    assert make_client().version() == "4.3.1"
    standin.configure(version="4.1.7")
    assert make_client().version() == "4.1.7"
    # No login, no token for the version.
    assert _log(standin) == [("GET", "/api/version", 200)] * 2


def test_version_of_another_product_is_not_erp(standin: Standin, make_client: MakeClient) -> None:
    standin.inject(Fault("not_nonsistemas", path="/api/version"))
    error = _raises(make_client().version)
    assert error.code == ErrorCode.NOT_ERP
    assert error.permanent
    assert "no es una API de NonSistemas" in error.message
    assert standin.url in error.message
    assert "proveedor de NonSistemas" in error.message
    assert len(_log(standin)) == 1  # a web page does not turn into the API by retrying


def test_version_html_error_page_of_a_proxy_is_retried(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    standin.inject(Fault("html", path="/api/version", status=502))
    assert make_client().version() == "4.3.1"
    assert len(fake_time.waits) == 1


def test_version_html_404_is_not_erp(standin: Standin, make_client: MakeClient) -> None:
    standin.inject(Fault("html", path="/api/version", status=404))
    assert _raises(make_client().version).code == ErrorCode.NOT_ERP


def test_url_without_the_api_is_not_erp(standin: Standin, make_client: MakeClient) -> None:
    error = _raises(make_client(standin.url + "/nope/").version)
    assert error.code == ErrorCode.NOT_ERP
    assert error.permanent
    assert "/nope/" in error.message
    assert _log(standin) == [("GET", "/nope/api/version", 404)]


def test_version_json_of_another_shape_is_not_erp(make_client: MakeClient) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"status": "ok"}))
    error = _raises(make_client("https://erp.example.com", transport=transport).version)
    assert error.code == ErrorCode.NOT_ERP


def test_headers_sent(standin: Standin, make_client: MakeClient) -> None:
    recording = Recording()
    client = make_client(transport=recording)
    client.version()
    _page(client)
    version, login, stock = recording.sent
    for request in recording.sent:
        assert request.headers["user-agent"] == USER_AGENT
        assert "gzip" in request.headers["accept-encoding"]
    assert "authorization" not in version.headers
    assert "authorization" not in login.headers
    assert stock.headers["authorization"].startswith("Bearer ")
    assert json.loads(login.content) == {"usuario": ERP_USER, "clave": ERP_PASSWORD}


# ---- login --------------------------------------------------------------------------------


def test_login(standin: Standin, make_client: MakeClient) -> None:
    client = make_client()
    client.login()
    assert _log(standin) == [("POST", "/api/login", 200)]
    assert client.stats.requests == 1
    assert client.stats.relogins == 0


def test_login_is_lazy_and_reused(standin: Standin, make_client: MakeClient) -> None:
    standin.generate(25)
    client = make_client()
    for pagina in (1, 2, 3):
        _page(client, pagina)
    assert _log(standin, "/api/login") == [("POST", "/api/login", 200)]
    assert client.stats.requests == 4


def test_wrong_password_is_never_retried(standin: Standin, make_client: MakeClient) -> None:
    client = make_client(password="wrong-password")
    error = _raises(client.login)
    assert error.code == ErrorCode.BAD_CREDENTIALS
    assert error.permanent
    assert "wrong-password" not in error.message
    assert _log(standin) == [("POST", "/api/login", 401)]


def test_wrong_password_on_a_lazy_login(standin: Standin, make_client: MakeClient) -> None:
    client = make_client(password="wrong-password")
    error = _raises(lambda: _page(client))
    assert error.code == ErrorCode.BAD_CREDENTIALS
    assert _log(standin) == [("POST", "/api/login", 401)]


def test_user_without_api_access(standin: Standin, make_client: MakeClient) -> None:
    standin.add_user("panel", "clave-panel", api_access=False)
    error = _raises(make_client(username="panel", password="clave-panel").login)
    assert error.code == ErrorCode.NO_API_ACCESS
    assert error.permanent
    assert "API" in error.message
    assert _log(standin) == [("POST", "/api/login", 403)]


def test_login_rate_limited_waits_and_retries(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    standin.inject(Fault("status", path="/api/login", status=429, retry_after=12))
    make_client().login()
    assert fake_time.waits == [12]
    assert _log(standin) == [("POST", "/api/login", 429), ("POST", "/api/login", 200)]


def test_login_server_error_is_retried(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    standin.inject(Fault("status", path="/api/login", status=500))
    client = make_client()
    _page(client)
    assert _log(standin, "/api/login") == [
        ("POST", "/api/login", 500),
        ("POST", "/api/login", 200),
    ]
    assert client.stats.retries == 1


# ---- connection failures --------------------------------------------------------------------


def test_refused(make_client: MakeClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = _raises(make_client(f"http://127.0.0.1:{port}").version)
    assert error.code == ErrorCode.REFUSED
    assert f"127.0.0.1:{port}" in error.message
    assert isinstance(error.__cause__, httpx.ConnectError)


def test_dns(make_client: MakeClient) -> None:
    error = _raises(make_client("https://erp.nonexistent-store.invalid/ns/").version)
    assert error.code == ErrorCode.DNS
    assert "erp.nonexistent-store.invalid" in error.message
    assert "escrito" in error.message


def test_timeout_then_success(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    standin.inject(Fault("delay", delay=1.0))
    client = make_client(timeout=0.2)
    assert _page(client).pagina == 1
    assert client.stats.retries == 1
    assert len(fake_time.waits) == 1


def test_timeout_exhausted(standin: Standin, make_client: MakeClient) -> None:
    standin.inject(Fault("delay", delay=1.0))
    client = make_client(timeout=0.2, max_retries=0)
    error = _raises(lambda: _page(client))
    assert error.code == ErrorCode.TIMEOUT
    assert not error.permanent
    assert any(isinstance(e, httpx.TimeoutException) for e in _chain(error))


def test_reset_then_success(standin: Standin, make_client: MakeClient) -> None:
    standin.inject(Fault("reset"))
    client = make_client()
    assert _page(client).pagina == 1
    assert [status for _, _, status in _log(standin, "/api/stock")] == [None, 200]


def test_reset_exhausted(standin: Standin, make_client: MakeClient) -> None:
    standin.inject(Fault("reset", times=10))
    error = _raises(lambda: _page(make_client(max_retries=2)))
    assert error.code == ErrorCode.CONNECTION
    assert len(_log(standin, "/api/stock")) == 3


# ---- rate limits and server errors -----------------------------------------------------------


def test_429_honours_retry_after(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    standin.inject(Fault("status", status=429, retry_after=7))
    client = make_client()
    assert _page(client).pagina == 1
    assert fake_time.waits == [7]
    assert client.stats.retries == 1


def test_429_retry_after_is_capped(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    standin.inject(Fault("status", status=429, retry_after=3600))
    _page(make_client(max_retry_after=30))
    assert fake_time.waits == [30]


def test_429_exhausted_is_rate_limited(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    standin.inject(Fault("status", status=429, retry_after=2, times=10))
    error = _raises(lambda: _page(make_client(max_retries=3)))
    assert error.code == ErrorCode.RATE_LIMITED
    assert not error.permanent
    assert fake_time.waits == [2, 2, 2]
    assert "4 veces" in error.message


def test_real_rate_limit_of_the_instance(standin: Standin, make_client: MakeClient) -> None:
    # The stand-in's limiter runs on real time, so this one test really waits (1 s).
    standin.configure(request_limit_per_second=1)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    client = make_client(sleep=sleep, clock=time.monotonic)
    _page(client)
    _page(client)  # refused by the limiter, then retried after Retry-After
    assert waits == [1]
    assert [status for _, _, status in _log(standin, "/api/stock")] == [200, 429, 200]


def test_500_502_html_503_then_success(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    standin.inject(Fault("status", status=500))
    standin.inject(Fault("html", status=502, after_requests=1))
    standin.inject(Fault("status", status=503, after_requests=2, retry_after=4))
    client = make_client()
    assert _page(client).pagina == 1
    assert [status for _, _, status in _log(standin, "/api/stock")] == [500, 502, 503, 200]
    assert client.stats.retries == 3
    assert len(fake_time.waits) == 3
    assert fake_time.waits[2] == 4  # the 503's Retry-After
    # Backoff with full jitter: within base * 2**n.
    assert 0 <= fake_time.waits[0] <= 0.5
    assert 0 <= fake_time.waits[1] <= 1.0


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault("status", status=503, times=10), ErrorCode.SERVER_ERROR),
        (Fault("html", status=504, times=10), ErrorCode.SERVER_ERROR),
        (Fault("malformed_json", times=10), ErrorCode.BAD_RESPONSE),
        (Fault("truncated_json", times=10), ErrorCode.BAD_RESPONSE),
    ],
)
def test_retries_exhausted_name_the_last_cause(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime, fault: Fault, code: str
) -> None:
    standin.inject(fault)
    client = make_client(max_retries=2)
    error = _raises(lambda: _page(client))
    assert error.code == code
    assert not error.permanent
    assert "3 veces" in error.message
    assert len(_log(standin, "/api/stock")) == 3
    assert len(fake_time.waits) == 2
    assert client.stats.retries == 2


def test_last_cause_wins(standin: Standin, make_client: MakeClient) -> None:
    standin.inject(Fault("status", status=503))
    standin.inject(Fault("malformed_json", after_requests=1))
    error = _raises(lambda: _page(make_client(max_retries=1)))
    assert error.code == ErrorCode.BAD_RESPONSE


@pytest.mark.parametrize("kind", ["malformed_json", "truncated_json"])
def test_bad_json_then_success(standin: Standin, make_client: MakeClient, kind: str) -> None:
    standin.generate(5)
    standin.inject(Fault(kind))
    page = _page(make_client())
    assert len(page.items) == 5


def test_truncated_version_is_retried(standin: Standin, make_client: MakeClient) -> None:
    standin.inject(Fault("truncated_json", path="/api/version"))
    assert make_client().version() == "4.3.1"


# ---- tokens ---------------------------------------------------------------------------------


def test_token_expired_mid_sequence_logs_in_once_more(
    standin: Standin, make_client: MakeClient
) -> None:
    standin.generate(30)
    client = make_client()
    _page(client, 1)
    standin.inject(Fault("token_expired"))
    assert len(_page(client, 2).items) == 10
    _page(client, 3)
    assert _log(standin) == [
        ("POST", "/api/login", 200),
        ("GET", "/api/stock", 200),
        ("GET", "/api/stock", 401),
        ("POST", "/api/login", 200),
        ("GET", "/api/stock", 200),
        ("GET", "/api/stock", 200),
    ]
    assert client.stats.relogins == 1
    assert client.stats.retries == 0


def test_token_expired_twice_in_a_row_is_token_error(
    standin: Standin, make_client: MakeClient
) -> None:
    standin.inject(Fault("token_expired", times=2))
    error = _raises(lambda: _page(make_client()))
    assert error.code == ErrorCode.TOKEN
    assert not error.permanent
    assert "token_vencido" in error.message
    assert _log(standin) == [
        ("POST", "/api/login", 200),
        ("GET", "/api/stock", 401),
        ("POST", "/api/login", 200),
        ("GET", "/api/stock", 401),
    ]


def test_token_really_expired_on_the_instance_clock(
    standin: Standin, make_client: MakeClient
) -> None:
    # The instance's clock runs ahead of ours: our proactive renewal is too late,
    # the 401 is handled by logging in again.
    standin.configure(token_ttl=300)
    client = make_client()
    _page(client)
    standin.advance(301)
    _page(client)
    assert [status for _, _, status in _log(standin, "/api/stock")] == [200, 401, 200]
    assert client.stats.relogins == 1


def test_proactive_relogin_before_the_token_runs_out(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    standin.configure(token_ttl=300)
    client = make_client()
    _page(client)
    fake_time.now += 200
    standin.advance(200)
    _page(client)  # still well inside the token's life: no login
    assert len(_log(standin, "/api/login")) == 1
    fake_time.now += 80
    standin.advance(80)
    _page(client)  # 280 s of 300: renewed before asking
    assert _log(standin) == [
        ("POST", "/api/login", 200),
        ("GET", "/api/stock", 200),
        ("GET", "/api/stock", 200),
        ("POST", "/api/login", 200),
        ("GET", "/api/stock", 200),
    ]
    assert client.stats.relogins == 1


# ---- data -----------------------------------------------------------------------------------


def _catalog() -> list[dict[str, Any]]:
    return [
        {
            "codigo": "ACE-0001",
            "descripcion": "Aceite girasol 1.5 L caja x12",
            "stock": "340.000",
            "precio_mayorista": "18250.50",
            "moneda": "ARS",
            "activo": True,
            "modificado": "2026-11-20T14:03:11-03:00",
        },
        {
            "codigo": " har-0002",
            "descripcion": "Harina 000 por kg",
            "stock": "-2.125",
            "precio_mayorista": None,
            "moneda": "USD",
            "activo": False,
            "modificado": "2026-11-20T14:03:12-03:00",
        },
    ]


@pytest.mark.parametrize("legacy", [False, True])
def test_items_and_numbers(standin: Standin, make_client: MakeClient, legacy: bool) -> None:
    standin.configure(legacy_numbers=legacy)
    standin.load(_catalog())
    page = _page(make_client())
    assert (page.total_items, page.total_paginas, page.por_pagina) == (2, 1, 10)
    assert page.hora_servidor is not None and page.hora_servidor.tzinfo is not None
    first, second = page.items
    assert first.code == "ACE-0001"
    assert first.stock == Decimal("340")
    assert first.price == Decimal("18250.5")
    assert str(first.price).rstrip("0").rstrip(".") == "18250.5"  # exact, no float noise
    assert first.modified == dt.datetime(2026, 11, 20, 14, 3, 11, tzinfo=ART)
    assert second.code == " har-0002"
    assert second.stock == Decimal("-2.125")
    assert second.price is None and second.price_raw is None
    assert second.active is False
    if legacy:
        # Old instances send numbers, no `moneda` (it means ARS) and no `activo: true`.
        # JSON numbers are decoded as int or Decimal, never float.
        assert isinstance(first.stock_raw, int | Decimal)
        assert isinstance(first.price_raw, Decimal)
        assert (first.currency, second.currency) == ("ARS", "ARS")
        assert first.active is True
    else:
        assert first.stock_raw == "340.000"
        assert (first.currency, second.currency) == ("ARS", "USD")


def test_legacy_json_numbers_arrive_exact(make_client: MakeClient) -> None:
    # Written by hand: json.dumps of a float would already have rounded them.
    items = [
        ("A", "1234.565", "18250.50"),
        ("B", "0.30000000000000004", "0.1"),
        # More digits than a float holds: a float would round these up a cent.
        ("C", "7", "10.004999999999999999"),
        ("D", "NaN", "Infinity"),
        ("E", "1e400", "-0.0"),
    ]
    body = (
        '{"pagina": 1, "por_pagina": 10, "total_items": 5, "total_paginas": 1, '
        '"hora_servidor": "2026-11-20T14:03:11-03:00", "items": ['
        + ", ".join(
            f'{{"codigo": "{code}", "stock": {stock}, "precio_mayorista": {price}, '
            '"modificado": "2026-11-20T14:03:11-03:00"}'
            for code, stock, price in items
        )
        + "]}"
    ).encode()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/login"):
            return httpx.Response(200, content=b'{"token": "t0k3n", "expira_en": 1800.0}')
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    client = make_client("https://erp.example.com", transport=httpx.MockTransport(answer))
    a, b, c, d, e = _page(client).items

    assert (str(a.stock), str(a.price)) == ("1234.565", "18250.50")
    assert (str(b.stock), str(b.price)) == ("0.30000000000000004", "0.1")
    assert str(c.price) == "10.004999999999999999"
    # So the price applied is the one the ERP meant, to the cent.
    assert price_from_erp(c, "ARS") == (Decimal("10.00"), "")
    assert (d.stock, d.price) == (None, None)  # NaN and Infinity are not numbers
    assert (e.stock, e.price) == (None, Decimal("-0.0"))
    for item in (a, b, c, d, e):
        assert not isinstance(item.stock_raw, float) and not isinstance(item.price_raw, float)


def test_desde_is_sent_in_instance_time(standin: Standin, make_client: MakeClient) -> None:
    standin.load(_catalog())
    since = dt.datetime(2026, 11, 20, 17, 3, 12, 900_000, tzinfo=dt.UTC)
    page = _page(make_client(), desde=since)
    assert [item.code for item in page.items] == [" har-0002"]
    (entry,) = [e for e in standin.requests() if e["path"] == "/api/stock"]
    assert entry["query"]["desde"] == "2026-11-20T14:03:12-03:00"


@pytest.mark.parametrize("suffix", ["", "/"])
def test_path_prefix(suffix: str, fake_time: FakeTime) -> None:
    with Standin.start(port=0, user=ERP_USER, password=ERP_PASSWORD, prefix="/ns") as server:
        server.load(_catalog())
        assert server.url.endswith("/ns")
        with NonSistemasClient(
            server.url + suffix,
            ERP_USER,
            ERP_PASSWORD,
            sleep=fake_time.sleep,
            transport=guarded_transport(allow_local=True),
        ) as client:
            assert client.version() == "4.3.1"
            assert len(_page(client).items) == 2
        assert _log(server) == [
            ("GET", "/api/version", 200),
            ("POST", "/api/login", 200),
            ("GET", "/api/stock", 200),
        ]


def test_large_pages(standin: Standin, make_client: MakeClient) -> None:
    standin.generate(1500)
    client = make_client()
    page = _page(client, 1, por_pagina=wire.MAX_PAGE_SIZE)
    assert len(page.items) == 1000
    assert page.total_paginas == 2
    assert len(_page(client, 2, por_pagina=wire.MAX_PAGE_SIZE).items) == 500


def test_page_size_out_of_range_is_a_caller_error(make_client: MakeClient) -> None:
    with pytest.raises(ValueError):
        _page(make_client(), por_pagina=wire.MAX_PAGE_SIZE + 1)


def test_response_size_cap(standin: Standin, make_client: MakeClient) -> None:
    standin.generate(100)
    error = _raises(lambda: _page(make_client(max_response_bytes=5_000), por_pagina=100))
    assert error.code == ErrorCode.ABSURD_RESPONSE
    assert len(_log(standin, "/api/stock")) == 1  # not retried: it would be as large again


def _gzip_transport(body: bytes) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/login"):
            return httpx.Response(200, json={"token": "t0k3n", "expira_en": 1800})
        return httpx.Response(
            200, content=gzip.compress(body), headers={"Content-Encoding": "gzip"}
        )

    return httpx.MockTransport(answer)


def test_gzip_is_decoded(make_client: MakeClient) -> None:
    body = json.dumps(
        {
            "pagina": 1,
            "por_pagina": 10,
            "total_items": 2,
            "total_paginas": 1,
            "hora_servidor": "2026-11-26T13:00:00-03:00",
            "items": _catalog(),
        }
    ).encode()
    client = make_client("https://erp.example.com", transport=_gzip_transport(body))
    assert len(_page(client).items) == 2


def test_gzip_bomb_is_cut_at_the_cap(make_client: MakeClient) -> None:
    bomb = b'{"items": [' + b" " * 50_000_000 + b"]}"
    transport = _gzip_transport(bomb)
    client = make_client("https://erp.example.com", transport=transport, max_response_bytes=10_000)
    error = _raises(lambda: _page(client))
    assert error.code == ErrorCode.ABSURD_RESPONSE


def test_a_body_without_a_length_is_cut_at_the_cap(make_client: MakeClient) -> None:
    # No Content-Length to refuse up front (chunked): reading stops at the cap
    # instead of holding however much the server sends.
    pulled: list[int] = []

    def endless() -> Iterator[bytes]:
        yield b'{"items": ['
        for n in range(1000):
            pulled.append(n)
            yield b" " * 1000

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/login"):
            return httpx.Response(200, json={"token": "t0k3n", "expira_en": 1800})
        return httpx.Response(200, content=endless())

    client = make_client(
        "https://erp.example.com",
        transport=httpx.MockTransport(answer),
        max_response_bytes=10_000,
    )
    error = _raises(lambda: _page(client))
    assert error.code == ErrorCode.ABSURD_RESPONSE
    assert len(pulled) <= 11


def test_instance_ignoring_pagina_is_absurd(make_client: MakeClient) -> None:
    body = json.dumps(
        {"pagina": 1, "por_pagina": 10, "total_items": 30, "total_paginas": 3, "items": []}
    ).encode()
    transport = _gzip_transport(body)
    error = _raises(lambda: _page(make_client("https://erp.example.com", transport=transport), 2))
    assert error.code == ErrorCode.ABSURD_RESPONSE


def test_wrong_page_shape_is_bad_response_not_retried(make_client: MakeClient) -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("/api/login"):
            return httpx.Response(200, json={"token": "t0k3n", "expira_en": 1800})
        return httpx.Response(200, json={"pagina": 1, "items": "none"})

    client = make_client("https://erp.example.com", transport=httpx.MockTransport(answer))
    assert _raises(lambda: _page(client)).code == ErrorCode.BAD_RESPONSE
    assert calls == ["/api/login", "/api/stock"]


def test_redirect_is_not_followed(make_client: MakeClient) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "https://erp.example.com/ns/api/version"})

    client = make_client("http://erp.example.com/ns", transport=httpx.MockTransport(answer))
    error = _raises(client.version)
    assert error.code == ErrorCode.NOT_ERP
    assert error.permanent
    assert "redirige a https://erp.example.com/ns/api/version" in error.message


def test_retry_after_as_http_date_against_the_instance_clock(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    answers = iter(
        [
            httpx.Response(
                503,
                headers={
                    # The instance's clock is an hour off ours: only the difference counts.
                    "Date": "Wed, 25 Nov 2026 10:00:00 GMT",
                    "Retry-After": "Wed, 25 Nov 2026 10:00:09 GMT",
                },
            ),
            httpx.Response(200, json={"producto": "NonSistemas", "version": "4.3.1"}),
        ]
    )
    transport = httpx.MockTransport(lambda request: next(answers))
    assert make_client("https://erp.example.com", transport=transport).version() == "4.3.1"
    assert fake_time.waits == [9]


def test_bad_parameter_is_an_internal_error(make_client: MakeClient) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/login"):
            return httpx.Response(200, json={"token": "t0k3n", "expira_en": 1800})
        error = {"codigo": "parametro_invalido", "mensaje": "desde debe ser una fecha"}
        return httpx.Response(400, json={"error": error})

    client = make_client("https://erp.example.com", transport=httpx.MockTransport(answer))
    error = _raises(lambda: _page(client))
    assert error.code == ErrorCode.INTERNAL
    assert "desde debe ser una fecha" in error.message


# ---- deadlines ----------------------------------------------------------------------------


def test_run_deadline_passed_sends_nothing(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    client = make_client(run_deadline=fake_time.now - 1)
    assert _raises(lambda: _page(client)).code == ErrorCode.DEADLINE
    assert _raises(client.version).code == ErrorCode.DEADLINE
    assert standin.requests() == []


def test_run_deadline_stops_a_wait_that_would_cross_it(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    standin.inject(Fault("status", status=503, retry_after=30, times=10))
    client = make_client(run_deadline=fake_time.now + 10)
    error = _raises(lambda: _page(client))
    assert error.code == ErrorCode.DEADLINE
    assert fake_time.waits == []  # no point waiting past the deadline
    assert any(isinstance(e, ErpError) and e.code == ErrorCode.SERVER_ERROR for e in _chain(error))
    assert "HTTP 503" in error.message  # names the last problem


def test_run_deadline_reached_during_retries(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    standin.inject(Fault("status", status=503, retry_after=4, times=10))
    client = make_client(run_deadline=fake_time.now + 10, max_retries=10)
    assert _raises(lambda: _page(client)).code == ErrorCode.DEADLINE
    assert fake_time.waits == [4, 4]


def test_request_deadline_bounds_one_request(
    standin: Standin, make_client: MakeClient, fake_time: FakeTime
) -> None:
    standin.inject(Fault("status", status=503, retry_after=50, times=10))
    client = make_client(request_deadline=120, max_retries=10)
    error = _raises(lambda: _page(client))
    assert error.code == ErrorCode.SERVER_ERROR  # the request's budget, not the run's
    assert fake_time.waits == [50, 50]
    # The next request has a budget of its own.
    standin.clear_faults()
    assert _page(client).pagina == 1


# ---- TLS ------------------------------------------------------------------------------------


@contextmanager
def _tls_server(context: ssl.SSLContext) -> Iterator[int]:
    """Accepts TLS handshakes on 127.0.0.1 (and nothing else); yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    # Closing a socket does not wake a thread blocked in accept(): poll instead.
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(5)
            try:
                with context.wrap_socket(connection, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass  # the client refused our certificate: that is the point

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def test_tls_untrusted_certificate(tmp_path: Path, make_client: MakeClient) -> None:
    with _tls_server(Pki(tmp_path).server_context("127.0.0.1")) as port:
        error = _raises(make_client(f"https://127.0.0.1:{port}").version)
    assert error.code == ErrorCode.TLS
    assert error.permanent
    assert "no es de confianza" in error.message
    assert "verifica" not in error.message.lower().replace("verifique", "")


def test_tls_certificate_for_another_name(tmp_path: Path, make_client: MakeClient) -> None:
    pki = Pki(tmp_path)
    trusting = httpx.HTTPTransport(verify=ssl.create_default_context(cadata=pki.ca_pem().decode()))
    with _tls_server(pki.server_context("otro.example.com")) as port:
        error = _raises(make_client(f"https://127.0.0.1:{port}", transport=trusting).version)
    assert error.code == ErrorCode.TLS
    assert "no es válido para «127.0.0.1»" in error.message


# ---- secrets and logs --------------------------------------------------------------------


def test_secrets_never_in_errors_or_logs(
    standin: Standin, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    standin.configure(login_limit_per_minute=None)
    recording = Recording()
    errors: list[ErpError] = []

    def collect(call: Callable[[], object]) -> None:
        errors.append(_raises(call))

    # Tokens issued and then refused.
    standin.inject(Fault("token_expired", times=2))
    collect(lambda: _page(make_client(transport=recording)))
    # A good session, then failures with a token held.
    client = make_client(transport=recording, max_retries=1)
    _page(client)
    for fault in (
        Fault("status", status=503, times=2),
        Fault("malformed_json", times=2),
        Fault("reset", times=2),
        Fault("html", status=502, times=2),
    ):
        standin.inject(fault)
        collect(lambda: _page(client))
    # Wrong password, and one that is a prefix of the right one.
    collect(make_client(password="wrong-" + ERP_PASSWORD).login)
    collect(make_client(password=ERP_PASSWORD[:-1]).login)
    # A proxy that echoes the request, password and token included, in its error.
    echoed = f"usuario={ERP_USER} clave={ERP_PASSWORD} Authorization: Bearer t0k3n-secreto"

    def echo(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/login"):
            return httpx.Response(200, json={"token": "t0k3n-secreto", "expira_en": 1800})
        return httpx.Response(400, json={"error": {"codigo": "x", "mensaje": echoed}})

    echo_client = make_client("https://erp.example.com", transport=httpx.MockTransport(echo))
    collect(lambda: _page(echo_client))
    collect(make_client(run_deadline=0.0).login)

    tokens = recording.tokens() | {"t0k3n-secreto"}
    assert len(tokens) >= 3
    secrets = {ERP_PASSWORD, "wrong-" + ERP_PASSWORD, *tokens}
    assert len(errors) == 9
    for error in errors:
        for link in _chain(error):
            for text in (str(link), repr(link), *map(str, link.args)):
                for secret in secrets:
                    assert secret not in text, (error.code, text)
    for record in caplog.records:
        text = record.getMessage()
        assert "Bearer" not in text
        for secret in secrets:
            assert secret not in text
    # The retries were logged, under the integration's logger.
    assert any(r.name == "erp.nonsistemas" and r.levelno == logging.WARNING for r in caplog.records)
    assert repr(client).find(ERP_PASSWORD) == -1


def test_login_answer_without_a_token_is_not_retried(make_client: MakeClient) -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json={"tipo": "Bearer", "expira_en": 1800})

    client = make_client("https://erp.example.com", transport=httpx.MockTransport(answer))
    assert _raises(client.login).code == ErrorCode.BAD_RESPONSE
    assert calls == ["/api/login"]


def test_an_error_echoing_a_non_ascii_password_as_sent_hides_it_and_drops_nul(
    make_client: MakeClient,
) -> None:
    password = 'contraseña "ñandú"'
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/login"):
            sent.append(request.content.decode())
            return httpx.Response(200, json={"token": "t0k3n", "expira_en": 1800})
        # A proxy that echoes the login body it saw (JSON, non-ASCII left as is),
        # with a NUL byte, which PostgreSQL would refuse to store.
        echoed = f"cuerpo={sent[0]}\x00fin"
        return httpx.Response(400, json={"error": {"codigo": "x", "mensaje": echoed}})

    client = make_client(
        "https://erp.example.com", password=password, transport=httpx.MockTransport(answer)
    )
    error = _raises(lambda: _page(client))
    assert "ñandú" not in error.message
    assert "***" in error.message
    assert "\x00" not in error.message
    assert "fin" in error.message
