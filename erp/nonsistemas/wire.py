"""Everything about NonSistemas' wire format, in one place.

Endpoint paths, field names, number and date formats and the shape of a stock page
live here and nowhere else (see shared/nonsistemas-api.md): when a real instance
turns out to differ from the contract, the fix is a change in this module.

Nothing here does I/O; the client (client.py) sends requests and hands the decoded
JSON to these functions.
"""

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from catalog.quantities import bounded_decimal, plain_decimal
from erp.errors import ErpError, ErrorCode, printable
from erp.sources import ErpItem

# ---- endpoints ------------------------------------------------------------------

# Relative to the base URL the store admin typed, which may carry a path prefix.
# No leading slash: they are appended to the base path, never resolved against it.
VERSION_PATH: Final = "api/version"
LOGIN_PATH: Final = "api/login"
STOCK_PATH: Final = "api/stock"

PRODUCT_NAME: Final = "NonSistemas"
MAX_PAGE_SIZE: Final = 1000
DEFAULT_CURRENCY: Final = "ARS"

# The instance's local time (America/Argentina/Buenos_Aires). Argentina has had no
# daylight saving since 2009, so a fixed offset is exact and needs no tzdata.
ERP_TZ: Final = timezone(timedelta(hours=-3))

# Put in ErpItem.stock_raw / price_raw when the field is missing altogether, as
# opposed to present with `null` (raw None). A missing `precio_mayorista` is not
# the contract's "no wholesale price" (that is an explicit null), so it is reported
# as unreadable rather than silently clearing every price of a deviant instance.
FIELD_ABSENT: Final = "(campo ausente)"

# Error body: {"error": {"codigo": "...", "mensaje": "..."}}
ERR_TOKEN_EXPIRED: Final = "token_vencido"
ERR_TOKEN_INVALID: Final = "token_invalido"
ERR_BAD_CREDENTIALS: Final = "credenciales_invalidas"
ERR_NO_API_ACCESS: Final = "acceso_api_deshabilitado"
ERR_BAD_PARAMETER: Final = "parametro_invalido"

# Longest timestamp worth parsing; anything longer is garbage. Numbers are bounded
# the same way by catalog.quantities (MAX_NUMBER_CHARS).
_MAX_SCALAR_TEXT = 64


def endpoint_url(base_url: str, path: str) -> str:
    """`path` appended to the base URL's path, whatever the admin typed.

    `urljoin("https://erp.example.com/ns", "api/stock")` drops the `ns` prefix and
    `urljoin(base, "/api/stock")` drops any prefix, so the paths are joined by hand:
    exactly one slash between the prefix and the endpoint. Query and fragment of the
    base URL are dropped: an API base has neither.

    Raises ErpError(MALFORMED_URL) when the base URL is not an absolute http(s) URL
    or carries credentials (they would end up in logs and error messages).
    """
    text = base_url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as e:
        raise ErpError(ErrorCode.MALFORMED_URL, _malformed_url_message(), permanent=True) from e
    del port
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ErpError(ErrorCode.MALFORMED_URL, _malformed_url_message(), permanent=True)
    if parts.username is not None or parts.password is not None:
        raise ErpError(
            ErrorCode.MALFORMED_URL,
            "La URL del ERP no debe incluir usuario ni contraseña: "
            "escribilos en los campos Usuario y Contraseña y dejá en la URL solo la dirección.",
            permanent=True,
        )
    prefix = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc, f"{prefix}/{path.lstrip('/')}", "", ""))


def _malformed_url_message() -> str:
    return (
        "La URL del ERP no es válida: debe ser una dirección completa como "
        "https://miempresa.nonsistemas.com."
    )


def display_url(url: str) -> str:
    """scheme://host[:port]/path of a URL, for messages: no query, no userinfo."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(URL ilegible)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# ---- requests -------------------------------------------------------------------


def login_body(username: str, password: str) -> dict[str, str]:
    return {"usuario": username, "clave": password}


def stock_params(*, desde: datetime | None, pagina: int, por_pagina: int) -> dict[str, str]:
    if pagina < 1:
        raise ValueError(f"pagina must be >= 1, got {pagina}")
    if not 1 <= por_pagina <= MAX_PAGE_SIZE:
        raise ValueError(f"por_pagina must be between 1 and {MAX_PAGE_SIZE}, got {por_pagina}")
    params = {"pagina": str(pagina), "por_pagina": str(por_pagina)}
    if desde is not None:
        params["desde"] = format_desde(desde)
    return params


def format_desde(moment: datetime) -> str:
    """`moment` as the instance's local time with an explicit offset, to the second.

    The offset is always sent: a value without one would be read in the instance's
    zone, and a UTC datetime printed without it would be three hours off. Fractions
    are truncated (a datetime's microsecond is never negative, so this is a floor):
    rounding up could skip changes made in that very second, while `desde` is
    inclusive, so flooring at worst re-reads a few items.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("desde must be an aware datetime")
    return moment.astimezone(ERP_TZ).replace(microsecond=0).isoformat()


# ---- scalars --------------------------------------------------------------------


def parse_decimal(value: object) -> Decimal | None:
    """A contract number: a string like "340.000", or a JSON number (legacy instances).

    The client decodes JSON numbers as Decimal (never float), so a legacy
    `1234.565` arrives as exactly that. Returns None for anything else (null, bool,
    NaN, Infinity, thousands separators, exponents in strings, more than 64
    characters or digits, garbage); the caller keeps the raw value to report it.
    A float (from a caller that decoded JSON itself) goes through `str()`, the
    shortest repr that round-trips, so 18250.5 gives Decimal("18250.5").
    """
    if isinstance(value, float):
        return bounded_decimal(Decimal(str(value))) if math.isfinite(value) else None
    if isinstance(value, int | Decimal):  # bool is refused there: True is not 1 unit
        return bounded_decimal(value)
    if isinstance(value, str):
        return plain_decimal(value.strip())
    return None


def parse_timestamp(value: object) -> datetime | None:
    """An ISO-8601 timestamp as an aware datetime; None when missing or unreadable.

    The contract always sends an offset; a value without one is read in the
    instance's zone, as the instance itself reads `desde`. Fractions of a second
    are dropped (a floor: `microsecond` is never negative): the contract's times
    are whole seconds, and the reader pages by second. An instance that stamps
    milliseconds would otherwise return, for `desde` floored to the second, items
    "older" than the cursor, and every run would stop as absurd.
    """
    if not isinstance(value, str) or len(value) > _MAX_SCALAR_TEXT:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ERP_TZ)
    return moment.replace(microsecond=0)


def _parse_active(value: object) -> bool:
    # Absent or null means active (contract). Legacy-style 0/1 and "true"/"false"
    # are accepted; anything else also counts as active: discontinuing an item on
    # the strength of an unreadable flag would hide it from the store.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    return not (isinstance(value, str) and value.strip().lower() in ("false", "0", "no"))


def _parse_currency(value: object) -> str:
    if value is None:
        return DEFAULT_CURRENCY
    if isinstance(value, str):
        # Bounded and printable: it is shown in the reason a price was not applied.
        return printable(value.strip().upper())[:10]
    # Not a string: "" makes the engine's currency check reject it instead of
    # guessing ARS for an item that said something else.
    return ""


def parse_item(obj: object) -> ErpItem:
    """One element of a stock page's `items` as an ErpItem. Never raises.

    Unreadable fields become None with the raw value kept, so that one bad item is
    reported by the engine instead of failing a whole page.
    """
    data = obj if isinstance(obj, dict) else {}
    code = data.get("codigo")
    stock_raw = data.get("stock", FIELD_ABSENT)
    price_raw = data.get("precio_mayorista", FIELD_ABSENT)
    description = data.get("descripcion")
    return ErpItem(
        code=code if isinstance(code, str) else "",
        stock=parse_decimal(stock_raw),
        price=None if price_raw is None else parse_decimal(price_raw),
        currency=_parse_currency(data.get("moneda")),
        active=_parse_active(data.get("activo")),
        modified=parse_timestamp(data.get("modificado")),
        stock_raw=stock_raw,
        price_raw=price_raw,
        description=description if isinstance(description, str) else "",
    )


# ---- stock page -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StockPage:
    pagina: int
    por_pagina: int
    total_items: int
    total_paginas: int
    hora_servidor: datetime | None  # the instance's clock when it computed the page
    items: list[ErpItem]


def _bad_page(detail: str) -> ErpError:
    return ErpError(
        ErrorCode.BAD_RESPONSE,
        f"El ERP respondió la consulta de stock con un formato inesperado ({detail}). "
        "Si se repite, consultá con tu proveedor de NonSistemas.",
    )


def _absurd_page(detail: str) -> ErpError:
    return ErpError(
        ErrorCode.ABSURD_RESPONSE,
        f"El ERP respondió la consulta de stock con datos imposibles ({detail}). "
        "Si se repite, consultá con tu proveedor de NonSistemas.",
    )


def parse_stock_page(body: object) -> StockPage:
    """The decoded JSON of a GET /api/stock answer.

    Raises ErpError(BAD_RESPONSE) when the shape is wrong (not an object, `items`
    not a list, a counter not an integer) and ErpError(ABSURD_RESPONSE) when the
    counters contradict themselves. Individual items never fail the page.
    """
    if not isinstance(body, dict):
        raise _bad_page("no es un objeto JSON")
    items = body.get("items")
    if not isinstance(items, list):
        raise _bad_page("falta la lista de artículos")
    counters: dict[str, int] = {}
    for name in ("pagina", "por_pagina", "total_items", "total_paginas"):
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad_page(f"«{name}» no es un número entero")
        counters[name] = value
    if counters["pagina"] < 1 or counters["por_pagina"] < 1:
        raise _absurd_page("página o tamaño de página menor que 1")
    if counters["total_items"] < 0 or counters["total_paginas"] < 0:
        raise _absurd_page("totales negativos")
    if len(items) > counters["por_pagina"]:
        raise _absurd_page(f"{len(items)} artículos en una página de {counters['por_pagina']}")
    return StockPage(
        pagina=counters["pagina"],
        por_pagina=counters["por_pagina"],
        total_items=counters["total_items"],
        total_paginas=counters["total_paginas"],
        hora_servidor=parse_timestamp(body.get("hora_servidor")),
        items=[parse_item(item) for item in items],
    )


# ---- other answers --------------------------------------------------------------


def parse_version(body: object) -> str | None:
    """The version string of a GET /api/version answer; None if it is not NonSistemas'."""
    if not isinstance(body, dict) or body.get("producto") != PRODUCT_NAME:
        return None
    version = body.get("version")
    # Shown and kept in the audit trail: bounded and printable.
    return printable(version.strip())[:50] if isinstance(version, str) else ""


@dataclass(frozen=True, slots=True)
class LoginAnswer:
    token: str
    expires_in: float | None  # seconds; None when the answer did not say


# A bearer token goes into a header: printable ASCII without spaces, bounded.
_TOKEN_TEXT = re.compile(r"[\x21-\x7e]{1,4096}")


def parse_login(body: object) -> LoginAnswer | None:
    """A POST /api/login 200 answer; None when it carries no usable token."""
    if not isinstance(body, dict):
        return None
    token = body.get("token")
    if not isinstance(token, str) or not _TOKEN_TEXT.fullmatch(token):
        return None
    expires = body.get("expira_en")
    seconds: float | None = None
    # A JSON number (not the string form the stock fields use).
    number = None if isinstance(expires, str) else parse_decimal(expires)
    if number is not None and number > 0:
        seconds = float(number)
    return LoginAnswer(token=token, expires_in=seconds)


def parse_error_body(body: object) -> tuple[str | None, str | None]:
    """(codigo, mensaje) of the contract's error body, None for what is missing."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    codigo = error.get("codigo")
    mensaje = error.get("mensaje")
    return (
        codigo if isinstance(codigo, str) else None,
        mensaje if isinstance(mensaje, str) else None,
    )
