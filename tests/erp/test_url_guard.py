"""The SSRF guard for the ERP base URL: syntax, addresses, DNS and the transport.

DNS is faked by monkeypatching socket.getaddrinfo; connections go to servers on
127.0.0.1 started by the tests. Nothing here touches the network.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured

from erp import url_guard
from erp.errors import ErpError, ErrorCode
from erp.url_guard import (
    allowed_ports_from_settings,
    check_url,
    guarded_transport,
    is_blocked_address,
    resolve_and_check,
)
from tests.pki import Pki

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:4700:4700::1111"

# ---- helpers ---------------------------------------------------------------------


class FakeDNS:
    """socket.getaddrinfo with canned answers; each call consumes the next answer
    for that name (the last one repeats), so a rebinding resolver is one line."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str] | BaseException]] = {}
        self.calls: list[str] = []

    def set(self, host: str, *answers: list[str] | BaseException) -> None:
        self.answers[host] = list(answers)

    def __call__(
        self, host: str, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        queue = self.answers.get(host)
        if not queue:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, BaseException):
            raise answer
        result: list[tuple[Any, ...]] = []
        for address in answer:
            if ":" in address:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return result


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    # Gather this machine's addresses with the real resolver before faking it (the
    # guard also captures the real getaddrinfo at import for exactly this).
    url_guard._own_addresses()
    fake = FakeDNS()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


class FakeClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Connects:
    """Every socket.connect() made while the fixture is active."""

    attempts: list[tuple[str, int]] = field(default_factory=list)
    unreachable: set[str] = field(default_factory=set)
    # Addresses that never answer: a connect waits its whole timeout (on `clock`,
    # not for real) and times out.
    black_holes: set[str] = field(default_factory=set)
    clock: FakeClock = field(default_factory=FakeClock)
    waited: list[float] = field(default_factory=list)


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Connects:
    record = Connects()

    # Defined before the patch below, so the base is the real socket class.
    class RecordingSocket(socket.socket):
        def connect(self, address: Any) -> None:
            record.attempts.append((address[0], address[1]))
            if address[0] in record.unreachable:
                # Stands in for a public server: refused without touching the network.
                raise ConnectionRefusedError(111, "Connection refused (test)")
            if address[0] in record.black_holes:
                timeout = self.gettimeout()
                assert timeout is not None and timeout > 0
                record.waited.append(timeout)
                record.clock.now += timeout
                raise TimeoutError("timed out (test)")
            super().connect(address)

    monkeypatch.setattr(socket, "socket", RecordingSocket)
    return record


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket nobody should reach. Non-blocking so that accept() tells
    at once whether a connection arrived: a completed TCP connect is queued in the
    backlog before connect() returns, so no waiting is needed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def assert_nothing_accepted(sock: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        conn, _ = sock.accept()
        conn.close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host")))
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[tuple[str, str | None]]
    sni: list[str | None]


@contextmanager
def serve(tls: ssl.SSLContext | None = None) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.seen = []
    server.sni = []
    if tls is not None:
        tls.sni_callback = lambda _obj, name, _ctx: server.sni.append(name)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    # The socket is already listening, so requests can start right away; the
    # thread only has to be running to answer them.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def port_of(thing: socket.socket | _Server) -> int:
    sock = thing if isinstance(thing, socket.socket) else thing.socket
    return int(sock.getsockname()[1])


# ---- check_url -------------------------------------------------------------------

NOT_ALLOWED = ErrorCode.URL_NOT_ALLOWED
MALFORMED = ErrorCode.MALFORMED_URL

HOSTILE: list[tuple[str, str]] = [
    # IPv4 loopback in every spelling libc accepts
    ("https://127.0.0.1/", NOT_ALLOWED),
    ("HTTPS://127.0.0.1:443/", NOT_ALLOWED),
    ("https://2130706433/", NOT_ALLOWED),
    ("https://0177.0.0.1/", NOT_ALLOWED),
    ("https://0x7f.0.0.1/", NOT_ALLOWED),
    ("https://0x7f.0x0.0x0.0x1/", NOT_ALLOWED),
    ("https://0x7f000001/", NOT_ALLOWED),
    ("https://017700000001/", NOT_ALLOWED),
    ("https://127.1/", NOT_ALLOWED),
    ("https://127.0.0.1./", NOT_ALLOWED),
    # A zone identifier only means something on a local link, even on a public address
    ("https://[2606:4700:4700::1111%25eth0]/", NOT_ALLOWED),
    ("https://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/", NOT_ALLOWED),  # full-width
    # other internal IPv4
    ("https://169.254.169.254/latest/meta-data/", NOT_ALLOWED),
    ("https://100.64.0.1/", NOT_ALLOWED),
    ("https://100.100.100.200/", NOT_ALLOWED),
    ("https://0.0.0.0/", NOT_ALLOWED),
    ("https://0/", NOT_ALLOWED),
    ("https://10.0.0.1/", NOT_ALLOWED),
    ("https://172.16.0.1/", NOT_ALLOWED),
    ("https://192.168.1.1/", NOT_ALLOWED),
    ("https://255.255.255.255/", NOT_ALLOWED),
    ("https://198.18.0.1/", NOT_ALLOWED),
    # IPv6 and IPv4 embedded in IPv6
    ("https://[::1]/", NOT_ALLOWED),
    ("https://[::]/", NOT_ALLOWED),
    ("https://[::ffff:127.0.0.1]/", NOT_ALLOWED),
    ("https://[::ffff:7f00:1]/", NOT_ALLOWED),
    ("https://[::ffff:a9fe:a9fe]/", NOT_ALLOWED),
    ("https://[::127.0.0.1]/", NOT_ALLOWED),
    ("https://[2002:7f00:1::]/", NOT_ALLOWED),
    ("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", NOT_ALLOWED),  # Teredo -> 127.0.0.1
    ("https://[64:ff9b::7f00:1]/", NOT_ALLOWED),
    ("https://[64:ff9b::a9fe:a9fe]/", NOT_ALLOWED),
    ("https://[fe80::1%25eth0]/", NOT_ALLOWED),
    ("https://[fd00:ec2::254]/", NOT_ALLOWED),
    ("https://[fc00::1]/", NOT_ALLOWED),
    ("https://[fec0::1]/", NOT_ALLOWED),
    ("https://[ff02::1]/", NOT_ALLOWED),
    ("https://[2001:db8::1]/", NOT_ALLOWED),
    # userinfo and parser-differential tricks
    ("https://erp.example.com@169.254.169.254/", MALFORMED),
    ("https://erp.example.com\\@evil.example/", MALFORMED),
    ("https://evil.example#@erp.example.com/", MALFORMED),
    ("https://user:pass@erp.example.com/", MALFORMED),
    ("https://erp.example.com\\.evil.example/", MALFORMED),
    # ports
    ("https://erp.example.com:22/", NOT_ALLOWED),
    ("https://erp.example.com:5432/", NOT_ALLOWED),
    ("https://erp.example.com:6379/", NOT_ALLOWED),
    ("https://erp.example.com:80/", NOT_ALLOWED),
    ("https://erp.example.com:0/", MALFORMED),
    ("https://erp.example.com:65536/", MALFORMED),
    ("https://erp.example.com:+443/", MALFORMED),
    # schemes
    ("http://erp.example.com/", NOT_ALLOWED),
    ("http://2130706433/", NOT_ALLOWED),
    ("file:///etc/passwd", NOT_ALLOWED),
    ("gopher://127.0.0.1:6379/_INFO", NOT_ALLOWED),
    ("ftp://erp.example.com/", NOT_ALLOWED),
    ("data:text/plain,hola", NOT_ALLOWED),
    ("javascript:alert(1)", NOT_ALLOWED),
    ("dict://127.0.0.1:11211/stat", NOT_ALLOWED),
    ("ldap://erp.example.com/", NOT_ALLOWED),
    # control characters and spaces
    ("https://erp.example.com/\r\nX-Injected: 1", MALFORMED),
    ("https://erp.example.com\n.evil.example/", MALFORMED),
    ("https://erp.example.com\x00.evil.example/", MALFORMED),
    ("https://erp.example.com/\tns/", MALFORMED),
    ("https://erp.exa mple.com/", MALFORMED),
    ("https://erp.example.com\u200b/", MALFORMED),  # zero-width space
    ("https://erp.example.com/\u202ens/", MALFORMED),  # right-to-left override
    ("https://erp.example.com/%0d%0aX-Injected:%201/", MALFORMED),
    # local names
    ("https://localhost/", NOT_ALLOWED),
    ("https://LOCALHOST./", NOT_ALLOWED),
    ("https://api.localhost/", NOT_ALLOWED),
    ("https://localhost.localdomain/", NOT_ALLOWED),
    ("https://erp.local/", NOT_ALLOWED),
    ("https://metadata.google.internal/", NOT_ALLOWED),
    ("https://intranet/", NOT_ALLOWED),
    # query, fragment, paths and other malformed input
    ("https://erp.example.com/?next=/admin", MALFORMED),
    ("https://erp.example.com/ns#frag", MALFORMED),
    ("https:///etc/passwd", MALFORMED),
    ("https:erp.example.com", MALFORMED),
    ("erp.example.com", MALFORMED),
    ("erp.example.com:8443/ns", MALFORMED),
    ("https://1.2.3.4.5/", MALFORMED),
    ("https://08.0.0.1/", MALFORMED),
    ("https://0x08080808/", MALFORMED),  # public, but nobody means hex
    ("https://erp.example.123/", MALFORMED),
    ("https://erp.example.com/../admin/", MALFORMED),
    ("https://erp.example.com/%2e%2e/admin/", MALFORMED),
    ("https://erp.example.com//169.254.169.254/", MALFORMED),
    ("https://erp.example.com/a%2fb/", MALFORMED),
    ("https://erp.example.com/a%zz/", MALFORMED),
    ("https://erp.example.com/<script>/", MALFORMED),
    ("https://erp_example.com/", MALFORMED),
    ("https://%31%32%37.0.0.1/", MALFORMED),
    ("https://[v1.fe80::1]/", MALFORMED),
    ("https://::1/", MALFORMED),
    ("https://[::1/", MALFORMED),
    ("", MALFORMED),
    ("https://" + "a" * 64 + ".example.com/", MALFORMED),
]


@pytest.mark.parametrize(("url", "code"), HOSTILE, ids=[repr(u)[:60] for u, _ in HOSTILE])
def test_check_url_refuses_hostile_targets(url: str, code: str) -> None:
    with pytest.raises(ErpError) as info:
        check_url(url, allow_local=False)
    assert info.value.code == code, info.value.message
    assert info.value.permanent is True
    assert info.value.message  # always says what to fix


def test_hostile_list_is_long_enough() -> None:
    assert len(HOSTILE) >= 30


# Normalization: scheme and host lowercased, host IDNA-encoded without trailing dot,
# default port dropped, path ALWAYS ending in exactly one "/" (so "/ns" and "/ns/"
# give the same base), path case and valid percent-escapes kept.
GOOD: list[tuple[str, str]] = [
    ("https://mycompany.nonsistemas.com", "https://mycompany.nonsistemas.com/"),
    ("https://mycompany.nonsistemas.com/", "https://mycompany.nonsistemas.com/"),
    ("https://erp.example.com/ns/", "https://erp.example.com/ns/"),
    ("https://erp.example.com/ns", "https://erp.example.com/ns/"),
    ("HTTPS://ERP.Example.COM:443/NS", "https://erp.example.com/NS/"),
    ("https://erp.example.com:8443", "https://erp.example.com:8443/"),
    ("https://erp.example.com:/a", "https://erp.example.com/a/"),
    ("https://erp.example.com./a/b/", "https://erp.example.com/a/b/"),
    ("  https://erp.example.com  ", "https://erp.example.com/"),
    ("https://bücher.example/ñandú", "https://xn--bcher-kva.example/%C3%B1and%C3%BA/"),
    ("https://erp.example.com/ns%20x/", "https://erp.example.com/ns%20x/"),
    ("https://erp.example.com/~emp/a@b/", "https://erp.example.com/~emp/a@b/"),
    (f"https://{PUBLIC_V4}/", f"https://{PUBLIC_V4}/"),
    ("https://[2606:4700:4700:0:0:0:0:1111]", f"https://[{PUBLIC_V6}]/"),
]


@pytest.mark.parametrize(("url", "expected"), GOOD)
def test_check_url_accepts_and_normalizes(url: str, expected: str) -> None:
    assert check_url(url, allow_local=False) == expected
    assert check_url(expected, allow_local=False) == expected  # idempotent


def test_check_url_allowed_ports_parameter() -> None:
    assert (
        check_url(
            "https://erp.example.com:9443/", allow_local=False, allowed_ports=frozenset({9443})
        )
        == "https://erp.example.com:9443/"
    )
    with pytest.raises(ErpError) as info:
        check_url("https://erp.example.com/", allow_local=False, allowed_ports=frozenset({9443}))
    assert info.value.code == NOT_ALLOWED
    assert "9443" in info.value.message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/"),
        ("http://localhost:8000/ns", "http://localhost:8000/ns/"),
        ("https://erp.local:9000", "https://erp.local:9000/"),
        ("http://[::1]:8000/", "http://[::1]:8000/"),
        ("http://10.0.0.5/", "http://10.0.0.5/"),
        ("http://intranet:80/", "http://intranet/"),
    ],
)
def test_allow_local_accepts_local_targets(url: str, expected: str) -> None:
    assert check_url(url, allow_local=True) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://0.0.0.0:8000/",
        "http://[::]:8000/",
        "http://[fe80::1%25lo]:8000/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",  # broadcast
        "http://240.0.0.1/",  # reserved
        "http://100.100.100.200/",  # Alibaba Cloud metadata (inside the shared 100.64/10)
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",  # link-local
        "http://[ff02::1]/",  # multicast
        "ftp://127.0.0.1/",
        "http://user:pw@127.0.0.1:8000/",
        "http://127.0.0.1:8000/?x=1",
        "http://127.0.0.1:8000/\r\n",
        "http://127.0.0.1\\@evil.example/",
        "http://0x7f000001:8000/",  # still: write the address plainly
    ],
)
def test_allow_local_keeps_every_other_check(url: str) -> None:
    with pytest.raises(ErpError):
        check_url(url, allow_local=True)


def test_messages_say_what_to_fix() -> None:
    cases = {
        "https://erp.example.com:22/": "443",
        "https://user:pw@erp.example.com/": "usuario",
        "ftp://erp.example.com/": "https://",
        "erp.example.com": "https://",
        "https://erp.example.com/?a=1": "no lleva «?» ni «#»",
        "https://erp.example.com/ns#x": "no lleva «?» ni «#»",
        "http://erp.example.com:443/": "Cambiá http:// por https://",
        "https://erp.example.com\\@169.254.169.254/": "barra invertida",
        "https://169.254.169.254/": "169.254.169.254",
    }
    for url, hint in cases.items():
        with pytest.raises(ErpError) as info:
            check_url(url, allow_local=False)
        assert hint in info.value.message, (url, info.value.message)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="compares with glibc")
@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1",
        "127.1",
        "127.0.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "0X7F.0.0.1",
        "0x7f000001",
        "017700000001",
        "0x7f.0x0.0x0.0x1",
        "0000000000177.1",
        "4294967295",
        "4294967296",
        "1.16777215",
        "1.16777216",
        "256.1",
        "08.0.0.1",
        "0x",
        "1.2.3.0x",
        "1.2.3.4.5",
        "1..2",
        "0xg",
    ],
)
def test_ipv4_reading_matches_libc_inet_aton(text: str) -> None:
    ours = url_guard._inet_aton(text)
    try:
        libc: str | None = socket.inet_ntoa(socket.inet_aton(text))
    except OSError:
        libc = None
    assert (str(ours) if ours is not None else None) == libc


# ---- is_blocked_address ----------------------------------------------------------

BLOCKED = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "100.127.255.254",
    "100.100.100.200",
    "0.0.0.0",
    "0.1.2.3",
    "255.255.255.255",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "198.18.0.1",
    "198.19.255.255",
    "192.0.0.1",
    "192.0.2.1",
    "198.51.100.1",
    "203.0.113.1",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "::8.8.8.8",  # IPv4-compatible is deprecated whatever it embeds
    "::ffff:0:7f00:1",  # IPv4-translated (SIIT)
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "fc00::1",
    "fd12:3456::1",
    "fd00:ec2::254",
    "ff02::1",
    "100::1",
    "2001:db8::1",
    "3fff::1",
    "5f00::1",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:0:a00:1::f7f7:f7f7",  # Teredo, server 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
    "64:ff9b:1::808:808",  # local-use NAT64
    "4000::1",  # outside 2000::/3
    "2606:4700:4700::1111%eth0",  # public, but scoped to a local link
    "192.88.99.1",  # deprecated 6to4 relay anycast
    "2001:2::1",  # benchmarking (inside the IETF protocol assignments)
]
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    PUBLIC_V4,
    "200.45.191.35",
    "172.32.0.1",
    "100.128.0.1",
    "11.0.0.1",
    PUBLIC_V6,
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of a public address (DNS64 on IPv6-only hosts)
    "2002:808:808::1",  # 6to4 of a public address
    "2001:0:808:808::f7f7:f7f7",  # Teredo, server and client 8.8.8.8
]


@pytest.mark.parametrize("text", BLOCKED)
def test_is_blocked_address_blocks(text: str) -> None:
    assert is_blocked_address(ipaddress.ip_address(text)) is True


@pytest.mark.parametrize("text", ALLOWED)
def test_is_blocked_address_allows_public(text: str) -> None:
    assert is_blocked_address(ipaddress.ip_address(text)) is False


def test_own_addresses_are_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    own = frozenset({ipaddress.ip_address("8.8.4.4"), ipaddress.ip_address("2a00:1450::1")})
    monkeypatch.setattr(url_guard, "_own_addresses", lambda: own)
    assert is_blocked_address(ipaddress.ip_address("8.8.4.4"))
    assert is_blocked_address(ipaddress.ip_address("2a00:1450::1"))
    assert is_blocked_address(ipaddress.ip_address("::ffff:8.8.4.4"))
    assert not is_blocked_address(ipaddress.ip_address("8.8.8.8"))
    with pytest.raises(ErpError):
        check_url("https://8.8.4.4/", allow_local=False)
    assert check_url("http://8.8.4.4:8000/", allow_local=True) == "http://8.8.4.4:8000/"


def test_own_addresses_reads_linux_tables(tmp_path: Path) -> None:
    fib = tmp_path / "fib_trie"
    fib.write_text(
        "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n"
        "     |-- 203.0.113.7\n        /32 host LOCAL\n"
        "     |-- 203.0.113.255\n        /32 link BROADCAST\n"
    )
    inet6 = tmp_path / "if_inet6"
    inet6.write_text(
        "2a001450400100000000000000000001 02 40 00 80     eth0\n"
        "00000000000000000000000000000001 01 80 10 80       lo\n"
    )
    assert url_guard._read_fib_trie_local(str(fib)) == {ipaddress.ip_address("203.0.113.7")}
    assert url_guard._read_if_inet6(str(inet6)) == {
        ipaddress.ip_address("2a00:1450:4001::1"),
        ipaddress.ip_address("::1"),
    }
    assert url_guard._read_fib_trie_local(str(tmp_path / "missing")) == set()
    if Path("/proc/net/fib_trie").exists():
        assert ipaddress.ip_address("127.0.0.1") in url_guard._own_addresses.__wrapped__()


# ---- resolve_and_check -----------------------------------------------------------


def test_resolve_refuses_a_name_resolving_to_a_private_address(dns: FakeDNS) -> None:
    dns.set("erp.example.com", ["10.0.0.5"])
    with pytest.raises(ErpError) as info:
        resolve_and_check("erp.example.com", 443, allow_local=False)
    assert info.value.code == NOT_ALLOWED
    assert "10.0.0.5" not in info.value.message  # internal addresses stay in our logs
    assert dns.calls == ["erp.example.com"]


@pytest.mark.parametrize(
    "records",
    [[PUBLIC_V4, "192.168.1.10"], ["192.168.1.10", PUBLIC_V4], [PUBLIC_V6, "::ffff:10.0.0.1"]],
)
def test_resolve_refuses_one_public_one_private(dns: FakeDNS, records: list[str]) -> None:
    dns.set("erp.example.com", records)
    with pytest.raises(ErpError) as info:
        resolve_and_check("erp.example.com", 443, allow_local=False)
    assert info.value.code == NOT_ALLOWED


def test_resolve_dns_failure(dns: FakeDNS) -> None:
    with pytest.raises(ErpError) as info:
        resolve_and_check("erp.misspelled-example.com", 443, allow_local=False)
    assert info.value.code == ErrorCode.DNS
    assert info.value.permanent is True
    assert "Revisá" in info.value.message and "escrito" in info.value.message

    dns.set("erp.example.com", socket.gaierror(socket.EAI_AGAIN, "Temporary failure"))
    with pytest.raises(ErpError) as info:
        resolve_and_check("erp.example.com", 443, allow_local=False)
    assert info.value.code == ErrorCode.DNS
    assert info.value.permanent is False  # a resolver hiccup may pass


def test_resolve_returns_all_public_addresses_once(dns: FakeDNS) -> None:
    dns.set("erp.example.com", [PUBLIC_V4, PUBLIC_V6, PUBLIC_V4])
    assert resolve_and_check("erp.example.com", 443, allow_local=False) == [PUBLIC_V4, PUBLIC_V6]
    assert dns.calls == ["erp.example.com"]


def test_resolve_refuses_local_names_and_literals_without_dns(dns: FakeDNS) -> None:
    for host in ("localhost", "erp.internal", "intranet", "127.0.0.1", "::1", "2130706433"):
        with pytest.raises(ErpError) as info:
            resolve_and_check(host, 443, allow_local=False)
        assert info.value.code == NOT_ALLOWED, host
    assert resolve_and_check(PUBLIC_V4, 443, allow_local=False) == [PUBLIC_V4]
    assert resolve_and_check(f"[{PUBLIC_V6}]", 443, allow_local=False) == [PUBLIC_V6]
    assert dns.calls == []


@pytest.mark.parametrize(
    "host",
    [
        "erp.localdomain",
        "router.home.arpa",
        "5.0.0.10.in-addr.arpa",
        "erp.lan",
        "nas.home",
        "erp.corp",
        "erp.intranet",
        "erp.private",
        "erp.localhost",
    ],
)
def test_names_of_private_networks_are_refused_without_dns(dns: FakeDNS, host: str) -> None:
    with pytest.raises(ErpError) as info:
        check_url(f"https://{host}/", allow_local=False)
    assert info.value.code == NOT_ALLOWED
    with pytest.raises(ErpError) as info:
        resolve_and_check(host, 443, allow_local=False)
    assert info.value.code == NOT_ALLOWED
    assert dns.calls == []


def test_resolve_allow_local(dns: FakeDNS) -> None:
    dns.set("erp.test", ["127.0.0.1"])
    assert resolve_and_check("erp.test", 8000, allow_local=True) == ["127.0.0.1"]
    dns.set("metadata.test", ["169.254.169.254"])
    with pytest.raises(ErpError) as info:
        resolve_and_check("metadata.test", 80, allow_local=True)
    assert info.value.code == NOT_ALLOWED


def test_resolve_refuses_bad_ports_and_names(dns: FakeDNS) -> None:
    for host, port in (("erp.example.com", 0), ("erp.example.com", 70000), ("a\r\nb.com", 443)):
        with pytest.raises(ErpError) as info:
            resolve_and_check(host, port, allow_local=False)
        assert info.value.code == MALFORMED
    assert dns.calls == []


# ---- settings --------------------------------------------------------------------


def test_allowed_ports_from_settings(settings: Any) -> None:
    if hasattr(settings, "VXM_ERP_ALLOWED_PORTS"):
        del settings.VXM_ERP_ALLOWED_PORTS
    assert allowed_ports_from_settings() == frozenset({443, 8443})
    settings.VXM_ERP_ALLOWED_PORTS = [9443]
    assert allowed_ports_from_settings() == frozenset({9443})
    settings.VXM_ERP_ALLOWED_PORTS = ("443",)
    with pytest.raises(ImproperlyConfigured):
        allowed_ports_from_settings()


# ---- guarded_transport -----------------------------------------------------------


def test_transport_refuses_before_any_connection(
    dns: FakeDNS, connects: Connects, listener: socket.socket
) -> None:
    port = port_of(listener)
    dns.set("erp.example.com", ["127.0.0.1"])
    transport = guarded_transport(allow_local=False, allowed_ports=frozenset({port}))
    with httpx.Client(transport=transport) as client, pytest.raises(ErpError) as info:
        client.get(f"https://erp.example.com:{port}/api/version")
    assert info.value.code == NOT_ALLOWED
    assert dns.calls == ["erp.example.com"]
    assert connects.attempts == []
    assert_nothing_accepted(listener)


def test_transport_refuses_mixed_records_before_any_connection(
    dns: FakeDNS, connects: Connects, listener: socket.socket
) -> None:
    port = port_of(listener)
    dns.set("erp.example.com", [PUBLIC_V4, "127.0.0.1"])
    transport = guarded_transport(allow_local=False, allowed_ports=frozenset({port}))
    with httpx.Client(transport=transport) as client, pytest.raises(ErpError) as info:
        client.get(f"https://erp.example.com:{port}/")
    assert info.value.code == NOT_ALLOWED
    assert connects.attempts == []
    assert_nothing_accepted(listener)


def test_transport_checks_scheme_and_port_per_request(
    dns: FakeDNS, connects: Connects, settings: Any
) -> None:
    settings.VXM_ERP_ALLOWED_PORTS = (8443,)
    with httpx.Client(transport=guarded_transport(allow_local=False)) as client:
        for url in (
            "http://erp.example.com/",
            "http://erp.example.com:8443/",  # an allowed port, but not encrypted
            "https://erp.example.com/",  # 443 is not in the configured ports
            "https://erp.example.com:6379/",
            "https://localhost:8443/",
        ):
            with pytest.raises(ErpError) as info:
                client.get(url)
            assert info.value.code == NOT_ALLOWED, url
    assert dns.calls == []
    assert connects.attempts == []


def test_allow_local_reaches_local_server_with_one_lookup(dns: FakeDNS, connects: Connects) -> None:
    with serve() as server:
        port = port_of(server)
        # A rebinding resolver: if the transport looked the name up again, the
        # second answer would send it elsewhere.
        dns.set("erp.test", ["127.0.0.1"], ["198.51.100.7"])
        with httpx.Client(transport=guarded_transport(allow_local=True)) as client:
            response = client.get(f"http://erp.test:{port}/hello")
    assert response.status_code == 200
    assert response.text == "ok"
    assert dns.calls == ["erp.test"]
    assert connects.attempts == [("127.0.0.1", port)]
    assert server.seen == [("/hello", f"erp.test:{port}")]  # Host header keeps the name


def test_rebinding_resolver_cannot_reach_localhost(
    dns: FakeDNS, connects: Connects, listener: socket.socket
) -> None:
    port = port_of(listener)
    dns.set("erp.example.com", [PUBLIC_V4], ["127.0.0.1"])
    connects.unreachable.add(PUBLIC_V4)
    transport = guarded_transport(allow_local=False, allowed_ports=frozenset({port}))
    with httpx.Client(transport=transport) as client:
        # First connection: the checked public address, and only it.
        with pytest.raises(httpx.ConnectError) as refused:
            client.get(f"https://erp.example.com:{port}/")
        # The OS error stays reachable down the chain, for "nobody answers" messages.
        assert isinstance(_os_error_in_chain(refused.value), ConnectionRefusedError)
        assert dns.calls == ["erp.example.com"]
        assert connects.attempts == [(PUBLIC_V4, port)]
        # Next connection: a new lookup, whose private answer is refused in turn.
        with pytest.raises(ErpError) as info:
            client.get(f"https://erp.example.com:{port}/")
        assert info.value.code == NOT_ALLOWED
    assert dns.calls == ["erp.example.com", "erp.example.com"]
    assert connects.attempts == [(PUBLIC_V4, port)]
    assert_nothing_accepted(listener)


def _os_error_in_chain(error: BaseException) -> OSError | None:
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, OSError):
            return current
        current = current.__cause__ or current.__context__
    return None


def test_connection_refused_keeps_the_os_error(dns: FakeDNS) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = port_of(probe)
    probe.close()  # bound, never listening, now closed: connecting is refused
    dns.set("erp.test", ["127.0.0.1"])
    with (
        httpx.Client(transport=guarded_transport(allow_local=True)) as client,
        pytest.raises(httpx.ConnectError) as info,
    ):
        client.get(f"http://erp.test:{port}/")
    assert isinstance(_os_error_in_chain(info.value), ConnectionRefusedError)


def test_next_address_is_tried_when_one_refuses(dns: FakeDNS, connects: Connects) -> None:
    with serve() as server:
        port = port_of(server)
        dns.set("erp.test", [PUBLIC_V4, "127.0.0.1"])
        connects.unreachable.add(PUBLIC_V4)
        with httpx.Client(transport=guarded_transport(allow_local=True)) as client:
            response = client.get(f"http://erp.test:{port}/")
    assert response.status_code == 200
    assert connects.attempts == [(PUBLIC_V4, port), ("127.0.0.1", port)]
    assert dns.calls == ["erp.test"]


BLACK_HOLES = ["93.184.216.34", "93.184.216.35", "2606:2800:220:1::1", "93.184.216.36"]


def test_a_name_of_black_holes_fails_within_one_connect_timeout(
    dns: FakeDNS, connects: Connects
) -> None:
    """Four addresses that never answer: the request fails after the connect timeout,
    not four times it, and every address was tried."""
    dns.set("erp.example.com", BLACK_HOLES)
    connects.black_holes.update(BLACK_HOLES)
    start = connects.clock.now
    transport = guarded_transport(
        allow_local=False, allowed_ports=frozenset({443}), clock=connects.clock
    )
    with (
        httpx.Client(transport=transport, timeout=10.0) as client,
        pytest.raises(httpx.ConnectTimeout),
    ):
        client.get("https://erp.example.com/api/version")
    assert [host for host, _ in connects.attempts] == BLACK_HOLES
    assert connects.clock.now - start <= 10.0 + 1e-9
    assert sum(connects.waited) == pytest.approx(10.0)


def test_black_holes_do_not_starve_the_address_that_answers(
    dns: FakeDNS, connects: Connects
) -> None:
    with serve() as server:
        port = port_of(server)
        dns.set("erp.test", [*BLACK_HOLES[:2], "127.0.0.1"])
        connects.black_holes.update(BLACK_HOLES)
        start = connects.clock.now
        transport = guarded_transport(allow_local=True, clock=connects.clock)
        with httpx.Client(transport=transport, timeout=10.0) as client:
            response = client.get(f"http://erp.test:{port}/")
    assert response.status_code == 200
    assert connects.attempts == [
        (BLACK_HOLES[0], port),
        (BLACK_HOLES[1], port),
        ("127.0.0.1", port),
    ]
    # Each silent address had its share of the timeout, and left the rest for the
    # one that answers.
    assert connects.clock.now - start < 10.0
    assert all(wait < 10.0 for wait in connects.waited)


def test_redirects_are_not_followed_and_are_checked_if_they_were(
    dns: FakeDNS, connects: Connects
) -> None:
    with serve() as server:
        port = port_of(server)
        dns.set("erp.test", ["127.0.0.1"])
        with httpx.Client(transport=guarded_transport(allow_local=True)) as client:
            response = client.get(f"http://erp.test:{port}/redirect")
            assert response.status_code == 302
            # Even a caller that turns following on cannot reach the metadata
            # address: every request goes through the guard, allow_local or not.
            with pytest.raises(ErpError) as info:
                client.get(f"http://erp.test:{port}/redirect", follow_redirects=True)
            assert info.value.code == NOT_ALLOWED
    assert all(host == "127.0.0.1" for host, _ in connects.attempts)


def test_transport_refuses_kwargs_that_bypass_the_guard() -> None:
    for kwargs in ({"proxy": "http://proxy.example:3128"}, {"verify": False}, {"uds": "/x"}):
        with pytest.raises(TypeError):
            guarded_transport(allow_local=False, allowed_ports=frozenset({443}), **kwargs)


def test_unreadable_ca_certificate() -> None:
    with pytest.raises(ErpError) as info:
        guarded_transport(allow_local=False, allowed_ports=frozenset({443}), ca_cert_pem="hola")
    assert info.value.code == ErrorCode.TLS
    assert info.value.permanent is True


# ---- TLS: SNI and certificate verification use the name, not the IP ---------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A private CA (like a store's own) and server certificates it signs."""
    return Pki(tmp_path_factory.mktemp("pki"), "VXM test CA")


def test_tls_without_the_private_ca_fails_verification(dns: FakeDNS, pki: Pki) -> None:
    with serve(pki.server_context("erp.test")) as server:
        port = port_of(server)
        dns.set("erp.test", ["127.0.0.1"])
        with (
            httpx.Client(transport=guarded_transport(allow_local=True)) as client,
            pytest.raises(httpx.ConnectError) as info,
        ):
            client.get(f"https://erp.test:{port}/")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert server.sni == ["erp.test"]
    assert server.seen == []


def test_tls_with_the_private_ca_verifies_the_name(dns: FakeDNS, pki: Pki) -> None:
    with serve(pki.server_context("erp.test")) as server:
        port = port_of(server)
        dns.set("erp.test", ["127.0.0.1"])
        transport = guarded_transport(allow_local=True, ca_cert_pem=pki.ca_pem().decode())
        with httpx.Client(transport=transport) as client:
            response = client.get(f"https://erp.test:{port}/ns/api/version")
            # The same server by its IP fails: the certificate names erp.test only,
            # so the success above was verified against the name, not 127.0.0.1.
            with pytest.raises(httpx.ConnectError) as info:
                client.get(f"https://127.0.0.1:{port}/")
    assert response.status_code == 200
    assert server.sni[0] == "erp.test"  # SNI carried the name
    assert server.seen == [("/ns/api/version", f"erp.test:{port}")]
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert dns.calls == ["erp.test"]


def test_tls_certificate_for_another_name_is_refused(dns: FakeDNS, pki: Pki) -> None:
    with serve(pki.server_context("other.test")) as server:
        port = port_of(server)
        dns.set("erp.test", ["127.0.0.1"])
        transport = guarded_transport(allow_local=True, ca_cert_pem=pki.ca_pem().decode())
        with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError) as info:
            client.get(f"https://erp.test:{port}/")
    assert "erp.test" in str(info.value)  # "Hostname mismatch ... not valid for 'erp.test'"
    assert server.seen == []


def test_a_private_ca_is_trusted_only_by_transports_given_it(dns: FakeDNS, pki: Pki) -> None:
    """TLS setups are shared between transports (building one reads the whole root
    bundle), but a store's CA never leaks into another store's transport."""
    other_ca = Pki(pki.tmp, "Otra CA").ca_pem().decode()
    with serve(pki.server_context("erp.test")) as server:
        port = port_of(server)
        dns.set("erp.test", ["127.0.0.1"])
        url = f"https://erp.test:{port}/"
        for ca, trusted in [
            (pki.ca_pem().decode(), True),
            (None, False),
            (other_ca, False),
            ("", False),
            (pki.ca_pem().decode(), True),
            (None, False),
        ]:
            transport = guarded_transport(allow_local=True, ca_cert_pem=ca)
            with httpx.Client(transport=transport) as client:
                if trusted:
                    assert client.get(url).status_code == 200
                else:
                    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                        client.get(url)
    assert len(server.seen) == 2


def test_transports_reuse_the_tls_setup(monkeypatch: pytest.MonkeyPatch, pki: Pki) -> None:
    built: list[ssl.SSLContext] = []
    create = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(create(*args, **kwargs))
        return built[-1]

    ca = Pki(pki.tmp, "CA de esta prueba").ca_pem().decode()
    guarded_transport(allow_local=True)  # the public roots' setup may be built already
    monkeypatch.setattr(ssl, "create_default_context", counting)
    for _ in range(3):
        guarded_transport(allow_local=True)
        guarded_transport(allow_local=False, allowed_ports=frozenset({443}))
    assert built == []
    for _ in range(3):
        guarded_transport(allow_local=True, ca_cert_pem=ca)
    assert len(built) == 1  # once for this CA
    [context] = built
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
