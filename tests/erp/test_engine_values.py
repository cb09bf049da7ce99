"""The ERP's stock and prices through the engine's value rules (shared bounds)."""

from decimal import Decimal

import pytest

from erp.engine import price_from_erp, stock_from_erp
from erp.nonsistemas import wire
from erp.sources import ErpItem


def item(stock: object = "1.000", price: object = "10.00", **fields: object) -> ErpItem:
    return wire.parse_item({"codigo": "A", "stock": stock, "precio_mayorista": price, **fields})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("340.000", 340),
        ("2.999", 2),  # floored: never promise a unit that is not there
        ("-3.000", 0),  # a sale without stock
        ("999999999999.999", 999_999_999_999),
        ("1000000000000.000", None),  # a data error, not stock
        (Decimal("1E+60"), None),
        (Decimal("NaN"), None),
        ("1" * 29, None),
    ],
)
def test_stock_is_floored_and_bounded(raw: object, expected: int | None) -> None:
    assert stock_from_erp(item(stock=raw)) == expected


@pytest.mark.parametrize(
    ("raw", "expected", "reason"),
    [
        ("18250.50", Decimal("18250.50"), ""),
        (Decimal("1234.565"), Decimal("1234.57"), ""),  # half up, exact
        ("999999999999.99", Decimal("999999999999.99"), ""),
        ("999999999999.995", None, "fuera de rango"),  # rounds to the cap
        ("1000000000000.00", None, "fuera de rango"),
        ("1" * 29, None, "fuera de rango"),  # quantize would trap InvalidOperation
        ("0.00", None, "tiene que ser mayor que 0"),
        ("-5.00", None, "tiene que ser mayor que 0"),
        (Decimal("Infinity"), None, "no es un número"),
    ],
)
def test_price_is_rounded_and_bounded(raw: object, expected: Decimal | None, reason: str) -> None:
    price, problem = price_from_erp(item(price=raw), "ARS")
    assert price == expected
    assert reason in problem and bool(problem) == bool(reason)
