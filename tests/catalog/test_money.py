from decimal import Decimal

import pytest

from catalog.templatetags.money import money, thousands


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("18250"), "$ 18.250,00"),
        (Decimal("18250.5"), "$ 18.250,50"),
        (Decimal("0"), "$ 0,00"),
        (Decimal("999.99"), "$ 999,99"),
        (Decimal("1234567.89"), "$ 1.234.567,89"),
        (Decimal("999999999999.99"), "$ 999.999.999.999,99"),
        ("42.1", "$ 42,10"),
        (0.1 + 0.2, "$ 0,30"),
        (Decimal("-5"), "-$ 5,00"),
        (None, "—"),
        ("", "—"),
        ("n/d", "n/d"),
    ],
)
def test_money_formats_like_argentina(value: object, expected: str) -> None:
    assert money(value) == expected


def test_money_shows_the_store_currency() -> None:
    assert money(Decimal("10"), "USD") == "US$ 10,00"
    assert money(Decimal("10"), "ARS") == "$ 10,00"


def test_thousands_groups_with_dots() -> None:
    assert thousands(1250) == "1.250"
    assert thousands(999) == "999"
    assert thousands(1000000) == "1.000.000"
