"""Stock and money: parsed in one place, exact and bounded.

Everything that puts a stock or a price into the catalog goes through here: the
item form and the CSV import parse what a person typed (`parse_stock`,
`parse_price`), and the ERP update turns the ERP's numbers into whole units and
cents (`whole_units`, `to_cents`, `plain_decimal`) under its own rules (flooring,
negative stock, positive prices: `erp/engine.py`).

Numbers are `Decimal`, never float, and bounded before anything costly or fragile
happens to them: a value with 29 or more digits makes `Decimal.quantize` raise
`decimal.InvalidOperation`, which is an `ArithmeticError`, not a `ValueError`, so
it used to escape every `except ValueError` as a 500 page. Values this large are
data errors, never stock or prices, and both columns would overflow.
"""

import re
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Final

from django.utils.translation import gettext

# Exclusive caps, shared with the ERP update. A price below MAX_PRICE fits the
# DecimalField(max_digits=14, decimal_places=2); a stock below MAX_STOCK fits the
# BigIntegerField many times over.
MAX_STOCK: Final = 10**12
MAX_PRICE: Final = Decimal(10) ** 12
CENT: Final = Decimal("0.01")
# The longest number text worth converting (the ERP's "340.000" is 7): anything
# longer is garbage and would only cost CPU (int() or Decimal of a megabyte).
MAX_NUMBER_CHARS: Final = 64
# At most this much of a bad value is quoted back in a message: a CSV cell can be
# megabytes long, and the report keeps hundreds of messages.
_SHOWN_CHARS = 40

# Explicit, so the result does not depend on whatever context the thread has: with
# 28 digits of precision, quantizing anything of 27 or more integer digits to cents
# traps InvalidOperation, which `to_cents` turns into "out of range".
_CONTEXT = Context(prec=28, traps=[InvalidOperation])

_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

_STOCK = re.compile(r"[0-9]+")
# "1 500": a space (or NBSP, thin space) between thousands is unambiguous.
_SPACED_STOCK = re.compile(r"[0-9]{1,3}(?: [0-9]{3})+")
_NEGATIVE = re.compile(r"[-\u2212]\s*[0-9.,][0-9., ]*")
# One separator: it is the decimal one ("18250,50" or "18250.50").
_PLAIN_PRICE = re.compile(r"(?P<int>[0-9]+)(?:[.,](?P<dec>[0-9]+))?")
# Grouped by thousands, strictly: es-AR "18.250,50", en "18,250.50", or with spaces
# "18 250,50" / "18 250.50". A lone point or comma group ("18.250") stays ambiguous.
_GROUPED_PRICE = re.compile(
    r"(?P<int>[0-9]{1,3}(?:\.[0-9]{3})+),(?P<dec>[0-9]{1,2})"
    r"|(?P<int2>[0-9]{1,3}(?:,[0-9]{3})+)\.(?P<dec2>[0-9]{1,2})"
    r"|(?P<int3>[0-9]{1,3}(?: [0-9]{3})+)(?:[.,](?P<dec3>[0-9]{1,2}))?"
)
# What Excel writes for long numbers ("1,23457E+11", "1.2e5").
_EXPONENT = re.compile(r"[0-9]+(?:[.,][0-9]+)?\s*[eE]\s*[-+]?[0-9]+")
_NOT_A_NUMBER = re.compile(r"[-+]?(?:nan|snan|inf|infinity)", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")
# Spaces people and spreadsheets put inside numbers: NBSP, narrow NBSP, thin space.
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})

_BIGGEST_PRICE = "999.999.999.999,99"
_BIGGEST_STOCK = "999.999.999.999"


class QuantityError(ValueError):
    """A stock or price that cannot be used; the message (in the active language)
    says what to do."""


# ----- shared conversions ------------------------------------------------------------


def bounded_decimal(value: Decimal | int) -> Decimal | None:
    """`value` as a Decimal if it is finite and of a sane size (at most
    MAX_NUMBER_CHARS digits, exponent within as many places); None otherwise.

    For numbers that arrive already converted (a JSON number decoded as Decimal, a
    JSON integer): a thousand-digit number is no stock or price, and keeping it out
    here spares the arithmetic downstream.
    """
    if isinstance(value, bool):  # an int subclass: True is not 1 unit
        return None
    if isinstance(value, int):
        # Checked before converting: str() of a 5000-digit int raises ValueError.
        if value.bit_length() > MAX_NUMBER_CHARS * 4:
            return None
        value = Decimal(value)
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # "n", "N", "F": NaN, sNaN, Infinity
        return None
    if len(digits) > MAX_NUMBER_CHARS or abs(exponent) > MAX_NUMBER_CHARS:
        return None
    return value


def plain_decimal(text: str) -> Decimal | None:
    """`-1234.56`-style text as an exact Decimal: ASCII digits, an optional point
    and decimals, no grouping, no exponent, at most MAX_NUMBER_CHARS. None otherwise."""
    if len(text) > MAX_NUMBER_CHARS or not _PLAIN_DECIMAL.fullmatch(text):
        return None
    return Decimal(text)


def whole_units(value: Decimal) -> int | None:
    """`value` floored to whole units; None when it is not finite or |value| >= MAX_STOCK.

    Bounded before int(): int(Decimal("1E+100000000")) would build a number of a
    hundred million digits.
    """
    try:
        if not value.is_finite() or value.copy_abs() >= MAX_STOCK:
            return None
        return int(value.to_integral_value(rounding=ROUND_FLOOR, context=_CONTEXT))
    except ArithmeticError:
        return None


def to_cents(value: Decimal) -> Decimal | None:
    """`value` rounded half-up to cents; None when it is not finite or |result| >= MAX_PRICE."""
    try:
        cents = value.quantize(CENT, rounding=ROUND_HALF_UP, context=_CONTEXT)
    except ArithmeticError:
        # InvalidOperation: too many digits for the precision (a 29-digit price).
        return None
    if not cents.is_finite() or cents.copy_abs() >= MAX_PRICE:
        return None
    return cents


# ----- what people type --------------------------------------------------------------


def _normalized(text: str) -> str:
    # isascii() first: translating every cell of a 300,000-row file costs.
    return (text if text.isascii() else text.translate(_SPACES)).strip()


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def parse_stock(text: str) -> int:
    """A stock as typed by a person: a whole number >= 0.

    Raises QuantityError with a message in Spanish for the admin. "1.000" is refused
    rather than guessed: in es-AR it is a thousand, elsewhere it is one.
    """
    value = _normalized(text)
    shown = _shown(value)
    if not value:
        raise QuantityError(gettext("Falta el stock."))
    if len(value) < 13 and _STOCK.fullmatch(value):
        return int(value)  # the usual case, below MAX_STOCK by its length alone
    if _STOCK.fullmatch(value) or _SPACED_STOCK.fullmatch(value):
        units = whole_units(Decimal(value.replace(" ", "")))
        if units is None:
            raise QuantityError(
                gettext("El stock «%(shown)s» es demasiado grande: el máximo es %(max)s.")
                % {"shown": shown, "max": _BIGGEST_STOCK}
            )
        return units
    if _NEGATIVE.fullmatch(value):
        raise QuantityError(
            gettext("El stock no puede ser negativo («%(shown)s»): ingresá 0 o más.")
            % {"shown": shown}
        )
    if _EXPONENT.fullmatch(value):
        raise QuantityError(
            gettext(
                "El stock «%(shown)s» está en notación científica (así muestra Excel los "
                "números largos): escribí el número completo, por ejemplo 1500."
            )
            % {"shown": shown}
        )
    if re.fullmatch(r"[0-9., ]+", value):
        raise QuantityError(
            gettext(
                "El stock tiene que ser un número entero, sin decimales ni puntos de miles "
                "(«%(shown)s»; por ejemplo 1500)."
            )
            % {"shown": shown}
        )
    raise QuantityError(
        gettext("El stock tiene que ser un número entero («%(shown)s»; por ejemplo 1500).")
        % {"shown": shown}
    )


def parse_price(text: str) -> Decimal:
    """A price as typed by a person, to 2 decimal places.

    Accepts comma or dot as the decimal separator ("18250,50", "18250.50"), and the
    es-AR way the panel shows prices ("$ 18.250,50"). A lone separator followed by
    three digits ("18.250") has more than 2 decimals and is refused instead of
    guessed as a thousands separator.
    """
    value = _normalized(text)
    shown = _shown(value)
    if not value:
        raise QuantityError(gettext("Falta el precio."))
    number = value.removeprefix("$").strip()
    if _NEGATIVE.fullmatch(number) or _NEGATIVE.fullmatch(value.replace("$", "").strip()):
        raise QuantityError(
            gettext("El precio no puede ser negativo («%(shown)s»).") % {"shown": shown}
        )
    if match := _PLAIN_PRICE.fullmatch(number):
        integer, decimals = match["int"], match["dec"] or ""
    elif match := _GROUPED_PRICE.fullmatch(number):
        integer = (match["int"] or match["int2"] or match["int3"]).translate(
            str.maketrans("", "", "., ")
        )
        decimals = match["dec"] or match["dec2"] or match["dec3"] or ""
    elif _EXPONENT.fullmatch(number):
        raise QuantityError(
            gettext(
                "El precio «%(shown)s» está en notación científica (así muestra Excel los "
                "números largos): escribí el número completo, por ejemplo 18250,50."
            )
            % {"shown": shown}
        )
    elif _NOT_A_NUMBER.fullmatch(number):
        raise QuantityError(
            gettext(
                "El precio «%(shown)s» no es un número: ingresá el precio, por ejemplo 18250,50."
            )
            % {"shown": shown}
        )
    elif _LETTER.search(number):
        raise QuantityError(
            gettext(
                "El precio tiene letras («%(shown)s»): usá sólo números, "
                "con coma o punto para los centavos."
            )
            % {"shown": shown}
        )
    else:
        raise QuantityError(
            gettext("El precio «%(shown)s» no es un número válido (por ejemplo 18250,50).")
            % {"shown": shown}
        )
    if len(decimals) > 2:
        hint = ""
        if len(decimals) == 3 and "." in number and len(integer) <= 12:
            # Most likely a thousands point: say how to write it instead of guessing.
            hint = " " + gettext(
                "Si son %(whole)s pesos, escribilo sin punto de miles (%(whole)s o %(whole)s,00)."
            ) % {"whole": f"{integer}{decimals}"}
        raise QuantityError(
            gettext("El precio tiene más de 2 decimales («%(shown)s»).") % {"shown": shown} + hint
        )
    price = to_cents(Decimal(f"{integer}.{decimals or '0'}"))
    if price is None:
        raise QuantityError(
            gettext("El precio «%(shown)s» es demasiado grande: el máximo es %(max)s.")
            % {"shown": shown, "max": _BIGGEST_PRICE}
        )
    return price
