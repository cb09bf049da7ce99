"""`{{ price|money }}` → "$ 18.250,00" in Spanish (Argentina), "$18,250.00" in
English: prices and counts as people who read the page's language write them.

Grouping and decimal marks come from Babel (the CLDR data, maintained for every
locale, the same data browsers and spreadsheets use: "." and "," for es-AR, ","
and "." for en) rather than Django's own formats: Django's "es" groups thousands
with a space, and its number formatting follows USE_THOUSAND_SEPARATOR globally
instead of per call. The currency symbol
stays ours and the store's ("$" for ARS, "US$" for USD, whatever the language):
CLDR's English calls the peso "ARS", which no store admin would write.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from typing import Any

from babel.numbers import get_decimal_symbol, get_group_symbol
from django import template
from django.utils import translation

register = template.Library()

SYMBOLS = {"ARS": "$", "USD": "US$"}
CENTS = Decimal("0.01")


def babel_locale() -> str:
    """The Babel locale of the active language: es_AR unless it is English."""
    return "en_US" if (translation.get_language() or "").startswith("en") else "es_AR"


@cache
def _marks(locale: str) -> dict[int, str]:
    """Python's "," and "." turned into the locale's group and decimal marks, from
    CLDR once per locale: grouping with Python's format and translating the marks
    is a fraction of Babel's own pattern formatting, which a page calls hundreds of
    times (benchmarks/money_format.py)."""
    return str.maketrans({",": get_group_symbol(locale), ".": get_decimal_symbol(locale)})


def format_decimal(value: Decimal | int, places: int, locale: str) -> str:
    return f"{value:,.{places}f}".translate(_marks(locale))


@register.filter
def money(value: Any, currency: str = "ARS") -> str:
    """The currency symbol in front, then the amount with the language's marks:
    es-AR "$ 1.234,56" (thousands ".", cents ",", a space after the symbol), en
    "$1,234.56".

    `currency` is the store's currency code (ARS shows "$", USD "US$"). Empty
    values show "—"; anything not a number is shown unchanged.
    """
    if value is None or value == "":
        return "—"
    try:
        # str() first: a float goes through its short repr, not its binary expansion.
        amount = Decimal(str(value)).quantize(CENTS, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(value)
    sign = "-" if amount < 0 else ""
    locale = babel_locale()
    number = format_decimal(abs(amount), 2, locale)
    symbol = SYMBOLS.get(currency or "ARS", currency)
    space = "" if locale == "en_US" else " "
    return f"{sign}{symbol}{space}{number}"


@register.filter
def thousands(value: Any) -> str:
    """Whole numbers grouped the language's way, es-AR "1.250", en "1,250", like the
    prices beside them."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return str(value)
    return format_decimal(number, 0, babel_locale())
