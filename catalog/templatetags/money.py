"""`{{ price|money }}` → "$ 18.250,00": prices as people in Argentina write them."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django import template

register = template.Library()

SYMBOLS = {"ARS": "$", "USD": "US$"}
CENTS = Decimal("0.01")


@register.filter
def money(value: Any, currency: str = "ARS") -> str:
    """Thousands with ".", cents with ",", the currency symbol in front.

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
    whole, cents = f"{abs(amount):.2f}".split(".")
    grouped = f"{int(whole):,}".replace(",", ".")
    symbol = SYMBOLS.get(currency or "ARS", currency)
    return f"{sign}{symbol} {grouped},{cents}"


@register.filter
def thousands(value: Any) -> str:
    """Whole numbers grouped the es-AR way, "1.250": Django's "es" locale would
    group with a space, unlike the prices beside them."""
    try:
        return f"{int(value):,}".replace(",", ".")
    except (TypeError, ValueError):
        return str(value)
