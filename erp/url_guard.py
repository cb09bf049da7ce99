"""Which ERP addresses our server may call, and a transport that enforces it.

Store admins type their ERP's base URL and our server then connects to it: a
server-side request on behalf of a partly trusted user (SSRF). Without a guard an
admin could make us call cloud metadata (169.254.169.254), our own database or
Redis, or anything else on the private network, and read the answer back through
our error messages.

Three layers, each usable alone:

* `check_url` validates and normalizes the URL the admin typed (no DNS), so the
  settings form can say exactly what to fix and only a canonical URL is stored.
* `resolve_and_check` resolves a name once and refuses it if ANY of its addresses
  is internal (a name with one public and one private record is refused).
* `guarded_transport` is an httpx transport whose connections are made by a
  network backend that calls `resolve_and_check` and connects to the checked IP
  literal itself. There is no second lookup that a DNS answer with a short TTL
  could change (DNS rebinding), while TLS SNI and certificate verification still
  use the hostname: httpcore 1.0 passes `server_hostname=origin.host` to
  `stream.start_tls` separately from the host it gives `connect_tcp`
  (httpcore/_sync/connection.py, `HTTPConnection._connect`).

`allow_local=True` (settings.VXM_ALLOW_LOCAL_ERP: the stand-in on 127.0.0.1 in
tests and the demo) allows loopback, private networks, plain http and any port,
but never the unspecified address, link-local (cloud metadata), multicast or
broadcast, and every other check still applies.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import re
import socket
import ssl
import string
import time
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

import certifi
import httpcore
import httpx
import idna
from django.utils.translation import gettext_noop

# httpcore's plain socket stream: public behaviour (read/write/start_tls) that we
# need unchanged, defined in a private module. httpx 0.28 requires httpcore 1.*.
from httpcore._backends.sync import SyncStream

from erp.errors import ErpError, ErrorCode

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_ALLOWED_PORTS: Final = frozenset({443, 8443})
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_MAX_URL_LENGTH: Final = 2048
_MAX_HOST_LENGTH: Final = 253

_EXAMPLE: Final = "https://miempresa.nonsistemas.com"

# ---- address policy --------------------------------------------------------------

# Refused even with allow_local: nothing legitimate lives there and they are the
# classic SSRF targets (0.0.0.0 reaches localhost on Linux; link-local is where the
# cloud metadata services answer).
_NEVER: Final = "never"
# Refused unless allow_local: loopback, private, shared, reserved-for-docs, ...
_LOCAL: Final = "local"
_Verdict = Literal["never", "local"] | None


def _nets(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Explicit tables (IANA special-purpose registries) rather than only the running
# Python's `is_private`/`is_global`, whose tables changed between 3.12 patch releases.
_V4_NEVER: Final = _nets(
    "0.0.0.0/8",  # "this network"; connecting to 0.0.0.0 reaches this host
    "169.254.0.0/16",  # link-local, incl. 169.254.169.254 (AWS/GCP/Azure/OCI metadata)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, incl. 255.255.255.255 broadcast
    "100.100.100.200/32",  # Alibaba Cloud metadata (inside 100.64/10)
)
_V4_LOCAL: Final = _nets(
    "10.0.0.0/8",
    "100.64.0.0/10",  # shared address space (carrier-grade NAT, also cloud VPC ranges)
    "127.0.0.0/8",
    "172.16.0.0/12",
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # documentation TEST-NET-1
    "192.88.99.0/24",  # deprecated 6to4 relay anycast
    "192.168.0.0/16",
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation TEST-NET-2
    "203.0.113.0/24",  # documentation TEST-NET-3
)
_V6_LOOPBACK: Final = ipaddress.IPv6Address("::1")
_V6_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")
_V6_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")  # deprecated, incl. :: itself
_V6_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_V6_6TO4: Final = ipaddress.IPv6Network("2002::/16")
_V6_TEREDO: Final = ipaddress.IPv6Network("2001::/32")
_V6_GLOBAL_UNICAST: Final = ipaddress.IPv6Network("2000::/3")
_V6_NEVER: Final = _nets(
    "fe80::/10",  # link-local
    "ff00::/8",  # multicast
    "100::/64",  # discard-only
    "fd00:ec2::254/128",  # AWS metadata over IPv6 (inside fc00::/7)
)
_V6_LOCAL: Final = _nets(
    "64:ff9b:1::/48",  # local-use NAT64: the operator's own translator, reaches anything
    "2001::/23",  # IETF protocol assignments (Teredo is handled before this)
    "2001:db8::/32",  # documentation
    "3fff::/20",  # documentation (RFC 9637)
    "5f00::/16",  # SRv6 SIDs
    "fc00::/7",  # unique local
    "fec0::/10",  # deprecated site-local
)


def is_blocked_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True when `ip` is not a public Internet address we may call.

    Covers loopback, private, link-local (cloud metadata), shared 100.64/10,
    multicast, reserved, unspecified, broadcast, benchmarking, documentation,
    site-local and unique-local networks, this machine's own addresses, and the
    IPv4 address embedded in IPv4-mapped, IPv4-compatible, 6to4, Teredo (server
    and client) and NAT64 addresses, checked recursively. No DNS and no I/O except
    reading this machine's addresses once (cached).
    """
    return _verdict(ip) is not None


def _is_refused(ip: IPAddress, *, allow_local: bool) -> bool:
    verdict = _verdict(ip)
    return verdict == _NEVER or (verdict == _LOCAL and not allow_local)


def _worst(*verdicts: _Verdict) -> _Verdict:
    if _NEVER in verdicts:
        return _NEVER
    if _LOCAL in verdicts:
        return _LOCAL
    return None


def _verdict(ip: IPAddress) -> _Verdict:
    if isinstance(ip, ipaddress.IPv4Address):
        return _verdict_v4(ip)
    return _verdict_v6(ip)


def _verdict_v4(ip: ipaddress.IPv4Address) -> _Verdict:
    if any(ip in net for net in _V4_NEVER):
        return _NEVER
    if any(ip in net for net in _V4_LOCAL) or ip in _own_addresses():
        return _LOCAL
    # Belt and braces: whatever else the running Python's IANA table knows about.
    if not ip.is_global:
        return _LOCAL
    return None


def _verdict_v6(ip: ipaddress.IPv6Address) -> _Verdict:
    if ip.scope_id:
        # A zone (fe80::1%eth0) only means something on a local link.
        return _NEVER
    ip = ipaddress.IPv6Address(int(ip))
    if ip == _V6_LOOPBACK:
        return _LOCAL
    # Addresses that carry an IPv4 address: the packet ends up at that IPv4 host
    # (the OS for mapped, a translator for NAT64, a relay for 6to4/Teredo), so the
    # embedded address decides.
    if ip in _V6_MAPPED:
        return _verdict_v4(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip in _V6_NAT64:
        return _verdict_v4(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip in _V6_COMPATIBLE:
        # Deprecated since RFC 4291 and never legitimate for a server, whatever it
        # embeds; `::` (unspecified) falls here too.
        return _NEVER
    if ip in _V6_6TO4:
        assert ip.sixtofour is not None
        return _verdict_v4(ip.sixtofour)
    if ip in _V6_TEREDO:
        assert ip.teredo is not None
        server, client = ip.teredo  # client is already un-inverted by ipaddress
        return _worst(_verdict_v4(server), _verdict_v4(client))
    if any(ip in net for net in _V6_NEVER):
        return _NEVER
    if any(ip in net for net in _V6_LOCAL) or ip in _own_addresses():
        return _LOCAL
    if ip not in _V6_GLOBAL_UNICAST:
        # Everything outside 2000::/3 not named above is reserved by IANA.
        return _NEVER
    if not ip.is_global:
        return _LOCAL
    return None


# Captured at import so that gathering our own addresses is not affected by a test
# that monkeypatches socket.getaddrinfo to fake DNS answers.
_system_getaddrinfo = socket.getaddrinfo


@functools.cache
def _own_addresses() -> frozenset[IPAddress]:
    """Every address of this machine we can find without extra dependencies.

    A server with a public address answers on it like on 127.0.0.1 (services bound
    to 0.0.0.0), so its own public addresses are as internal as loopback. Gathered
    once: the hostname's addresses, and on Linux every local IPv4 address from
    /proc/net/fib_trie and every IPv6 address from /proc/net/if_inet6. Each source
    may be missing (containers, other OSes); whatever is found is used.
    """
    found: set[IPAddress] = set()
    try:
        for *_, sockaddr in _system_getaddrinfo(socket.gethostname(), None):
            found.add(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
    except (OSError, ValueError, UnicodeError):
        pass
    found.update(_read_fib_trie_local())
    found.update(_read_if_inet6())
    return frozenset(found)


def _read_fib_trie_local(path: str = "/proc/net/fib_trie") -> set[IPAddress]:
    # Lines look like "  |-- 10.0.0.5" followed by "     /32 host LOCAL": the
    # LOCAL host routes are exactly the addresses assigned to this machine.
    found: set[IPAddress] = set()
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            last: str | None = None
            for line in f:
                stripped = line.strip()
                if stripped.startswith("|--"):
                    last = stripped[3:].strip()
                elif "/32 host LOCAL" in stripped and last:
                    with contextlib.suppress(ValueError):
                        found.add(ipaddress.IPv4Address(last))
    except OSError:
        pass
    return found


def _read_if_inet6(path: str = "/proc/net/if_inet6") -> set[IPAddress]:
    # One address per line, first field 32 hex digits.
    found: set[IPAddress] = set()
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                field = line.split(maxsplit=1)[0] if line.strip() else ""
                if len(field) == 32:
                    with contextlib.suppress(ValueError):
                        found.add(ipaddress.IPv6Address(int(field, 16)))
    except OSError:
        pass
    return found


# ---- host names ------------------------------------------------------------------

# Names that only mean something inside a network (RFC 6761/6762/8375 and the
# usual corporate pseudo-TLDs). Refused unless allow_local.
_LOCAL_NAMES: Final = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "localhost6",
        "localhost6.localdomain6",
        "ip6-localhost",
        "ip6-loopback",
        "broadcasthost",
    }
)
_LOCAL_SUFFIXES: Final = (
    ".localhost",
    ".local",
    ".internal",
    ".localdomain",
    ".arpa",  # home.arpa and reverse-DNS names
    ".lan",
    ".home",
    ".corp",
    ".intranet",
    ".private",
)

_HEX_LABEL = re.compile(r"0x[0-9a-f]*")
_LDH_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """`text` read the way libc's inet_aton (and so getaddrinfo) reads it, or None.

    1 to 4 parts, each decimal, octal (leading 0) or hex (0x); the last part fills
    the remaining bytes: "127.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1" are all
    127.0.0.1. WHATWG URL parsers read hosts the same way.
    """
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        lower = part.lower()
        if lower.startswith("0x"):
            digits, base = lower[2:], 16
            allowed = string.hexdigits
        elif len(part) > 1 and part.startswith("0"):
            digits, base = part[1:], 8
            allowed = string.octdigits
        else:
            digits, base = part, 10
            allowed = string.digits
        if not digits or any(c not in allowed for c in digits):
            return None
        values.append(int(digits, base))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return None
    number = last
    for i, v in enumerate(head):
        number |= v << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def _ends_in_number(host: str) -> bool:
    # WHATWG's "ends in a number": such a host is an IPv4 address or invalid, never
    # a name (no TLD is numeric), so it must not reach DNS as a name.
    last = host.rsplit(".", 1)[-1]
    return last.isascii() and (last.isdigit() or bool(_HEX_LABEL.fullmatch(last)))


def _malformed(message: str, **params: Any) -> ErpError:
    return ErpError(ErrorCode.MALFORMED_URL, message, permanent=True, params=params)


def _not_allowed(message: str, **params: Any) -> ErpError:
    return ErpError(ErrorCode.URL_NOT_ALLOWED, message, permanent=True, params=params)


def _internal_address(shown: str) -> ErpError:
    return _not_allowed(
        gettext_noop(
            "La dirección %(address)s pertenece a una red interna o reservada. Por seguridad "
            "solo nos conectamos a servidores públicos en Internet: escribí la dirección "
            "pública de tu ERP (por ejemplo %(example)s)."
        ),
        address=shown,
        example=_EXAMPLE,
    )


def _parse_host(raw: str, *, allow_local: bool) -> tuple[str, IPAddress | None]:
    """(host as written in the normalized URL, its address if it is an IP literal).

    Raises ErpError(MALFORMED_URL / URL_NOT_ALLOWED). `raw` is the host part of a
    URL: IPv6 literals in brackets.
    """
    if not raw:
        raise _malformed(
            gettext_noop(
                "Falta el nombre del servidor: escribí la dirección completa, como %(example)s."
            ),
            example=_EXAMPLE,
        )
    if raw.startswith("["):
        return _parse_ipv6_literal(raw, allow_local=allow_local)
    if "%" in raw or "[" in raw or "]" in raw or ":" in raw:
        raise _malformed(gettext_noop("El nombre de servidor «%(raw)s» no es válido."), raw=raw)
    try:
        # UTS #46 first, as browsers and WHATWG do: it maps full-width digits and
        # dots (U+FF11, U+FF0E...), circled digits and uppercase to ASCII, so the
        # IPv4 reading below sees what a resolver would. std3_rules refuses "_",
        # "@", "/", full-width "@" and the like.
        host = idna.encode(raw, uts46=True, std3_rules=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        raise _malformed(
            gettext_noop("El nombre de servidor «%(raw)s» no es válido."), raw=raw
        ) from None
    host = host.lower().removesuffix(".")  # one trailing dot (FQDN) is the same name
    if not host or len(host) > _MAX_HOST_LENGTH or not _LDH_HOST.fullmatch(host):
        raise _malformed(gettext_noop("El nombre de servidor «%(raw)s» no es válido."), raw=raw)

    if _ends_in_number(host):
        ip = _inet_aton(host)
        if ip is None:
            raise _malformed(
                gettext_noop(
                    "«%(raw)s» no es ni un nombre de servidor ni una dirección IP válida."
                ),
                raw=raw,
            )
        if _is_refused(ip, allow_local=allow_local):
            raise _internal_address(str(ip))
        if host != str(ip):
            # A public address in octal/hex/short form: refused rather than
            # rewritten, because the admin surely did not mean what libc reads.
            raise _malformed(
                gettext_noop(
                    "Escribí la dirección IP como cuatro números decimales separados por "
                    "puntos: «%(raw)s» se lee como %(ip)s."
                ),
                raw=raw,
                ip=ip,
            )
        return host, ip

    if not allow_local:
        if host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES):
            raise _not_allowed(
                gettext_noop(
                    "«%(host)s» es un nombre de una red interna. Escribí la dirección pública "
                    "de tu ERP (por ejemplo %(example)s)."
                ),
                host=host,
                example=_EXAMPLE,
            )
        if "." not in host:
            # A single label only resolves through /etc/hosts or search domains,
            # i.e. inside our own network.
            raise _not_allowed(
                gettext_noop(
                    "Escribí el nombre completo del servidor, con su dominio "
                    "(por ejemplo %(example)s en lugar de «%(host)s»)."
                ),
                example=_EXAMPLE,
                host=host,
            )
    return host, None


def _parse_ipv6_literal(raw: str, *, allow_local: bool) -> tuple[str, IPAddress]:
    if not raw.endswith("]"):
        raise _malformed(
            gettext_noop("La dirección IPv6 «%(raw)s» no es válida: falta el corchete final."),
            raw=raw,
        )
    inner = raw[1:-1]
    # RFC 6874 zone identifiers ("[fe80::1%25eth0]") only make sense on a local
    # link: parsed so the message is right, and refused in every mode.
    address_text, zone_sep, _zone = inner.partition("%")
    try:
        ip = ipaddress.IPv6Address(address_text)
    except ValueError:
        raise _malformed(
            gettext_noop("La dirección IPv6 «%(raw)s» no es válida."), raw=raw
        ) from None
    if zone_sep or _is_refused(ip, allow_local=allow_local):
        raise _internal_address(f"[{ip.compressed}]")
    return f"[{ip.compressed}]", ip


# ---- URLs ------------------------------------------------------------------------

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_PORT = re.compile(r"[0-9]{1,5}")
# RFC 3986 pchar minus "%" (checked separately) plus "/".
_PATH_SAFE: Final = frozenset(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")


def _is_invisible(ch: str) -> bool:
    # Controls (CR, LF, TAB, NUL, C1), format characters (zero-width joiners,
    # bidi overrides), separators (every kind of space), surrogates, private use
    # and unassigned code points: none belongs in an address someone types.
    return unicodedata.category(ch)[0] in "CZ"


def check_url(
    url: str,
    *,
    allow_local: bool,
    allowed_ports: frozenset[int] = DEFAULT_ALLOWED_PORTS,
) -> str:
    """The normalized ERP base URL, or ErpError(MALFORMED_URL / URL_NOT_ALLOWED).

    Syntactic only (no DNS; a name's addresses are checked at connect time by
    `guarded_transport`). The result is `scheme://host[:port]/path/`: scheme and
    host lowercased, host IDNA-encoded (punycode) without a trailing dot, the
    scheme's default port dropped, non-ASCII path characters percent-encoded, and
    the path always ending in exactly one "/" (`https://erp.example.com/ns` and
    `.../ns/` both give `https://erp.example.com/ns/`; no path gives "/").
    Spaces around the URL are ignored; anywhere else they are refused.
    """
    if not isinstance(url, str) or not url.strip(" "):
        raise _malformed(
            gettext_noop("Escribí la dirección de tu ERP, por ejemplo %(example)s."),
            example=_EXAMPLE,
        )
    text = url.strip(" ")
    if len(text) > _MAX_URL_LENGTH:
        raise _malformed(gettext_noop("La dirección es demasiado larga."))
    if any(_is_invisible(ch) for ch in text):
        raise _malformed(
            gettext_noop(
                "La dirección contiene espacios, saltos de línea, tabulaciones u otros "
                "caracteres invisibles: escribila de nuevo sin ellos."
            )
        )
    if "\\" in text:
        # Browsers read "\" as "/" and Python's urllib does not: a URL that two
        # parsers split differently is how "https://a.com\@evil/" tricks work.
        raise _malformed(
            gettext_noop(r"La dirección contiene una barra invertida (\): usá solo barras (/).")
        )

    scheme_match = _SCHEME.match(text)
    rest = text[scheme_match.end() :] if scheme_match else ""
    if scheme_match is None or (
        not rest.startswith("//") and ("." in scheme_match.group(1) or rest[:1].isdigit())
    ):
        # "erp.example.com", "erp.example.com:8443/ns", "localhost:8000"...
        raise _malformed(
            gettext_noop(
                "Escribí la dirección completa, empezando con https:// (por ejemplo %(example)s)."
            ),
            example=_EXAMPLE,
        )
    scheme = scheme_match.group(1).lower()
    allowed_schemes = ("https", "http") if allow_local else ("https",)
    if scheme not in allowed_schemes:
        if scheme == "http":
            raise _not_allowed(
                gettext_noop(
                    "Solo se aceptan direcciones https://: la conexión con el ERP debe ir "
                    "cifrada. Cambiá http:// por https://."
                )
            )
        raise _not_allowed(
            gettext_noop(
                "Solo se aceptan direcciones https:// (por ejemplo %(example)s); "
                "«%(scheme)s:» no está permitido."
            ),
            example=_EXAMPLE,
            scheme=scheme,
        )
    if not rest.startswith("//"):
        raise _malformed(
            gettext_noop(
                "Escribí la dirección completa, empezando con %(scheme)s:// (por ejemplo "
                "%(example)s)."
            ),
            scheme=scheme,
            example=_EXAMPLE,
        )
    if "?" in rest or "#" in rest:
        raise _malformed(
            gettext_noop(
                "La dirección base del ERP no lleva «?» ni «#»: borrá desde ese signo en adelante."
            )
        )

    authority, slash, path = rest[2:].partition("/")
    path = slash + path
    if "@" in authority:
        # Userinfo, and every "https://erp.example.com@169.254.169.254/" trick.
        raise _malformed(
            gettext_noop(
                "La dirección no debe incluir usuario ni contraseña (nada antes de una «@»): "
                "escribilos en los campos Usuario y Contraseña y dejá en la dirección solo el "
                "servidor."
            )
        )

    host_text, port_text = _split_host_port(authority)
    host, _ip = _parse_host(host_text, allow_local=allow_local)
    port = _parse_port(port_text, scheme=scheme, allow_local=allow_local, allowed=allowed_ports)
    normalized_path = _normalize_path(path)

    netloc = host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{normalized_path}"


def _split_host_port(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            raise _malformed(
                gettext_noop("La dirección IPv6 «%(authority)s» no es válida: falta «]»."),
                authority=authority,
            )
        host, after = authority[: end + 1], authority[end + 1 :]
        if not after:
            return host, None
        if not after.startswith(":"):
            raise _malformed(
                gettext_noop("«%(authority)s» no es un servidor válido."), authority=authority
            )
        return host, after[1:]
    if authority.count(":") > 1:
        raise _malformed(
            gettext_noop(
                "«%(authority)s» no es un servidor válido (una dirección IPv6 va entre corchetes)."
            ),
            authority=authority,
        )
    host, colon, port = authority.partition(":")
    return host, (port if colon else None)


def _parse_port(
    text: str | None, *, scheme: str, allow_local: bool, allowed: frozenset[int]
) -> int:
    if text is None or text == "":  # "host:" is the default port (RFC 3986)
        port = _DEFAULT_PORTS[scheme]
    else:
        if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
            raise _malformed(
                gettext_noop(
                    "El puerto «%(port)s» no es válido: debe ser un número entre 1 y 65535."
                ),
                port=text,
            )
        port = int(text)
    if not allow_local and port not in allowed:
        shown = ", ".join(str(p) for p in sorted(allowed)) or "ninguno"
        raise _not_allowed(
            gettext_noop(
                "El puerto %(port)s no está permitido. Usá el puerto estándar de https "
                "(sin escribir puerto) o uno de estos: %(ports)s."
            ),
            port=port,
            ports=shown,
        )
    return port


def _normalize_path(path: str) -> str:
    if not path:
        return "/"
    encoded = "".join(
        ch if ch.isascii() else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in path
    )
    bad = sorted({ch for ch in encoded if ch not in _PATH_SAFE and ch != "%"})
    if bad:
        raise _malformed(
            gettext_noop("La ruta de la dirección tiene caracteres no permitidos: %(chars)s."),
            chars=" ".join(bad),
        )
    if "//" in encoded:
        raise _malformed(
            gettext_noop(
                "La ruta de la dirección no puede tener «//»: escribila tal como figura en tu ERP."
            )
        )
    if "%" in _PCT.sub("", encoded):
        raise _malformed(
            gettext_noop("La ruta de la dirección tiene un «%» que no es un código válido.")
        )
    for escape in _PCT.findall(encoded):
        byte = int(escape[1:], 16)
        # Encoded controls, "/" and "\" mean different things to different servers.
        if byte < 0x20 or byte == 0x7F or chr(byte) in "/\\":
            raise _malformed(
                gettext_noop(
                    "La ruta de la dirección contiene un código no permitido (%(escape)s)."
                ),
                escape=escape,
            )
    segments = encoded.strip("/").split("/")
    if encoded.strip("/"):
        for segment in segments:
            decoded = _PCT.sub(lambda m: chr(int(m.group(0)[1:], 16)), segment)
            if decoded in (".", ".."):
                raise _malformed(
                    gettext_noop(
                        "La ruta de la dirección no puede tener «/./» ni «/../»: "
                        "escribila tal como figura en tu ERP."
                    )
                )
        return "/" + "/".join(segments) + "/"
    return "/"


# ---- settings --------------------------------------------------------------------


def allowed_ports_from_settings() -> frozenset[int]:
    """settings.VXM_ERP_ALLOWED_PORTS (ints), default 443 and 8443. Read per call."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    raw = getattr(settings, "VXM_ERP_ALLOWED_PORTS", None)
    if raw is None:
        return DEFAULT_ALLOWED_PORTS
    if not isinstance(raw, (list, tuple, set, frozenset)) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in raw
    ):
        raise ImproperlyConfigured(
            f"VXM_ERP_ALLOWED_PORTS must be a list of port numbers, got {raw!r}"
        )
    return frozenset(raw)


# ---- resolution ------------------------------------------------------------------


def _url_host(host: str) -> str:
    # httpcore hands connect_tcp an IPv6 literal without brackets.
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _resolve_checked(host: str, port: int, *, allow_local: bool) -> list[IPAddress]:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise _malformed(gettext_noop("El puerto «%(port)s» no es válido."), port=port)
    if not isinstance(host, str) or any(_is_invisible(ch) for ch in host):
        raise _malformed(gettext_noop("El nombre del servidor contiene caracteres no permitidos."))
    name, literal = _parse_host(_url_host(host), allow_local=allow_local)
    if literal is not None:
        return [literal]  # already checked by _parse_host; nothing to resolve

    try:
        # One lookup, all A and AAAA records. Looked up at call time (not bound at
        # import) so tests can fake DNS by monkeypatching socket.getaddrinfo.
        infos = socket.getaddrinfo(
            name, port, socket.AF_UNSPEC, socket.SOCK_STREAM, socket.IPPROTO_TCP
        )
    except socket.gaierror as e:
        temporary = e.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", None))
        raise ErpError(
            ErrorCode.DNS,
            gettext_noop(
                "No encontramos el servidor «%(name)s». Revisá que el nombre esté bien "
                "escrito (por ejemplo miempresa.nonsistemas.com)."
            ),
            params={"name": name},
            permanent=not temporary,
        ) from e
    except (UnicodeError, ValueError) as e:
        raise _malformed(
            gettext_noop("El nombre de servidor «%(name)s» no es válido."), name=name
        ) from e

    addresses: list[IPAddress] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            ip = ipaddress.ip_address(str(sockaddr[0]))
        except ValueError:
            raise _not_allowed(
                gettext_noop("El servidor «%(name)s» devolvió una dirección ilegible."), name=name
            ) from None
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise ErpError(
            ErrorCode.DNS,
            gettext_noop(
                "El servidor «%(name)s» no tiene direcciones. Revisá que el nombre esté bien "
                "escrito."
            ),
            params={"name": name},
            permanent=True,
        )
    refused = [ip for ip in addresses if _is_refused(ip, allow_local=allow_local)]
    if refused:
        # ANY internal record refuses the name: otherwise a name with one public and
        # one private record would reach the private one whenever it comes first.
        logger.warning(
            "ERP host %s refused: resolves to internal address(es) %s",
            name,
            ", ".join(map(str, refused)),
        )
        # The address itself stays in our logs: echoing it would let an admin map
        # our internal DNS.
        raise _not_allowed(
            gettext_noop(
                "La dirección de «%(name)s» pertenece a una red interna o reservada. Por "
                "seguridad solo nos conectamos a servidores públicos en Internet: escribí la "
                "dirección pública de tu ERP (por ejemplo %(example)s)."
            ),
            name=name,
            example=_EXAMPLE,
        )
    return addresses


def resolve_and_check(host: str, port: int, *, allow_local: bool) -> list[str]:
    """All addresses of `host` (one getaddrinfo call), if none of them is refused.

    Raises ErpError(URL_NOT_ALLOWED) when ANY address is internal (or the name is
    local), ErpError(DNS) when the name does not resolve, ErpError(MALFORMED_URL)
    for an invalid name. An IP literal is checked without any lookup.
    """
    return [str(ip) for ip in _resolve_checked(host, port, allow_local=allow_local)]


# ---- transport -------------------------------------------------------------------


class _CheckedBackend(httpcore.SyncBackend):
    """Connects only to addresses that `_resolve_checked` returned, by IP literal.

    The socket is connected to the checked sockaddr directly (no
    socket.create_connection, which would call getaddrinfo again). TLS is started
    afterwards by httpcore on the returned stream with server_hostname set to the
    URL's host, so SNI and certificate verification use the name, not the IP.
    """

    def __init__(self, *, allow_local: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self._allow_local = allow_local
        self._clock = clock

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        # `timeout` bounds the whole connect, lookup included, not each address:
        # socket.create_connection gives every address the full timeout, so a name
        # with N black-holed addresses would hold a worker (or an admin's page) for
        # N times the timeout.
        deadline = None if timeout is None else self._clock() + timeout
        addresses = _resolve_checked(host, port, allow_local=self._allow_local)
        for index, ip in enumerate(addresses):  # resolver order, like create_connection
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            sockaddr: tuple[Any, ...] = (
                (str(ip), port) if ip.version == 4 else (str(ip), port, 0, 0)
            )
            sock: socket.socket | None = None
            try:
                attempt_timeout = None
                if deadline is not None:
                    # An equal share of what is left: one black-holed address
                    # cannot starve a working one after it, and the last address
                    # gets everything that remains.
                    attempt_timeout = (deadline - self._clock()) / (len(addresses) - index)
                    if attempt_timeout <= 0:
                        raise TimeoutError("timed out")
                sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
                sock.settimeout(attempt_timeout)
                for option in socket_options or ():
                    sock.setsockopt(*option)
                if local_address is not None:
                    sock.bind((local_address, 0))
                sock.connect(sockaddr)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as e:  # incl. TimeoutError
                if sock is not None:
                    sock.close()
                if index + 1 < len(addresses):
                    continue
                # Raised inside the except block on purpose: httpcore's pool re-raises
                # with `from None`, which drops __cause__ but keeps __context__, and
                # callers diagnose "refused" vs "timeout" from the OS error there (as
                # with httpcore's own backend).
                kind: type[Exception] = (
                    httpcore.ConnectTimeout
                    if isinstance(e, TimeoutError)
                    else httpcore.ConnectError
                )
                raise kind(str(e)) from e
            return SyncStream(sock)
        raise AssertionError("unreachable: _resolve_checked never returns an empty list")


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with the checked backend and a per-request URL check.

    The URL check repeats the scheme, port and host-name rules of `check_url` for
    every request, so a redirect (if a caller ever turns following on) or a URL
    built elsewhere cannot go to http://, another port or a local name.
    """

    def __init__(
        self,
        *,
        allow_local: bool,
        allowed_ports: frozenset[int],
        ssl_context: ssl.SSLContext,
        clock: Callable[[], float] = time.monotonic,
        **transport_kwargs: Any,
    ) -> None:
        super().__init__(verify=ssl_context, **transport_kwargs)
        self._allow_local = allow_local
        self._allowed_ports = allowed_ports
        # httpx 0.28 builds `httpcore.ConnectionPool` without a way to pass a
        # network backend; the pool reads `_network_backend` for every new
        # connection, so swapping it before any request is enough. Checked so that
        # an httpx upgrade that changes this fails loudly instead of unguarded.
        pool = self._pool
        if type(pool) is not httpcore.ConnectionPool or not isinstance(
            getattr(pool, "_network_backend", None), httpcore.SyncBackend
        ):
            raise RuntimeError("httpx internals changed: cannot install the URL guard")
        pool._network_backend = _CheckedBackend(allow_local=allow_local, clock=clock)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme != "https" and not (self._allow_local and scheme == "http"):
            raise _not_allowed(
                gettext_noop("Solo se aceptan direcciones https:// (se intentó «%(scheme)s:»)."),
                scheme=scheme,
            )
        port = url.port or _DEFAULT_PORTS[scheme]
        if not self._allow_local and port not in self._allowed_ports:
            raise _not_allowed(gettext_noop("El puerto %(port)s no está permitido."), port=port)
        _parse_host(_url_host(url.host), allow_local=self._allow_local)
        return super().handle_request(request)


def _ssl_context(ca_cert_pem: str | None) -> ssl.SSLContext:
    # Verification on, always: CERT_REQUIRED, check_hostname, TLS >= 1.2.
    ctx = ssl.create_default_context()
    # Plus Mozilla's roots (what stock httpx trusts), so a slim container without
    # a system CA bundle still verifies public ERPs.
    ctx.load_verify_locations(cafile=certifi.where())
    if ca_cert_pem is not None:
        try:
            ctx.load_verify_locations(cadata=ca_cert_pem)
        except (ssl.SSLError, ValueError, TypeError) as e:
            raise ErpError(
                ErrorCode.TLS,
                gettext_noop(
                    "El certificado de la autoridad (CA) de tu ERP no se puede leer: pegá el "
                    "certificado en formato PEM, desde -----BEGIN CERTIFICATE----- hasta "
                    "-----END CERTIFICATE-----."
                ),
                permanent=True,
            ) from e
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    return ctx


# Loading the system roots and certifi's bundle takes tens of milliseconds, and
# every verification and run builds a transport: one context per set of trusted
# CAs (the public roots alone, or plus one store's CA), built once and never
# changed afterwards. Keyed by the CA's PEM text, so a store's CA is only ever in
# the context of transports given that CA. Failures are not cached (lru_cache
# does not keep exceptions).
_shared_ssl_context = functools.lru_cache(maxsize=64)(_ssl_context)


_FORBIDDEN_TRANSPORT_KWARGS: Final = frozenset({"verify", "proxy", "uds"})


def guarded_transport(
    *,
    allow_local: bool,
    ca_cert_pem: str | None = None,
    allowed_ports: frozenset[int] | None = None,
    clock: Callable[[], float] = time.monotonic,
    **transport_kwargs: Any,
) -> httpx.HTTPTransport:
    """An httpx transport that connects only to checked, public addresses.

    Each new connection resolves the host once, refuses it if any address is
    internal (ErpError(URL_NOT_ALLOWED), raised through httpx unchanged, before any
    connection is made) and connects to the checked IP literal; TLS SNI and
    certificate verification use the hostname. TLS verification is always on
    (system roots + certifi, plus `ca_cert_pem` for a store's private CA).
    `allowed_ports` defaults to `allowed_ports_from_settings()` (ignored when
    allow_local). The connect timeout bounds each connection as a whole, however
    many addresses the name has (`clock` exists for tests). `transport_kwargs` go
    to httpx.HTTPTransport (limits, retries, http2, ...); `verify`, `proxy` and
    `uds` are refused because each would bypass the guard. Use it as
    `httpx.Client(transport=...)` without `proxy=`/`mounts=`, and leave
    follow_redirects off (httpx's default). TLS setups are built once per set of
    trusted CAs and shared (they are never changed after being built).
    """
    forbidden = _FORBIDDEN_TRANSPORT_KWARGS & transport_kwargs.keys()
    if forbidden:
        raise TypeError(f"guarded_transport does not accept {', '.join(sorted(forbidden))}")
    ports = allowed_ports_from_settings() if allowed_ports is None else frozenset(allowed_ports)
    ca = ca_cert_pem if ca_cert_pem is not None and ca_cert_pem.strip() else None
    # httpx writes into the context it is given for a client certificate (`cert`),
    # and httpcore sets its ALPN list per connection (h2 or not): those transports
    # get a context of their own; every other one shares the cached context.
    own = bool(transport_kwargs.get("cert") or transport_kwargs.get("http2"))
    return GuardedTransport(
        allow_local=allow_local,
        allowed_ports=ports,
        ssl_context=_ssl_context(ca) if own else _shared_ssl_context(ca),
        clock=clock,
        **transport_kwargs,
    )
