"""Stock and money as stores write them: one parser for the form, the CSV and the ERP."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.quantities import (
    MAX_PRICE,
    MAX_STOCK,
    QuantityError,
    bounded_decimal,
    parse_price,
    parse_stock,
    to_cents,
    whole_units,
)

TWENTY_NINE_DIGITS = "1" * 29


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18250,50", "18250.50"),
        ("18250.50", "18250.50"),
        ("18250,5", "18250.50"),
        ("18250", "18250.00"),
        ("1.234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("$ 1.234,56", "1234.56"),
        ("$1.234,56", "1234.56"),
        ("$\u00a01.234,56", "1234.56"),  # what a copied panel price carries
        ("  1234,56  ", "1234.56"),
        ("1 234,56", "1234.56"),
        ("1\u202f234\u202f567.5", "1234567.50"),
        ("0", "0.00"),
        ("999999999999,99", "999999999999.99"),
        ("999.999.999.999,99", "999999999999.99"),
    ],
)
def test_prices_as_stores_write_them(text: str, expected: str) -> None:
    assert parse_price(text) == Decimal(expected)
    assert str(parse_price(text)) == expected  # exactly 2 places


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Falta el precio."),
        ("-5", "El precio no puede ser negativo («-5»)"),
        ("$ -1.234,56", "no puede ser negativo"),
        ("\u22125", "no puede ser negativo"),  # the typographic minus
        ("1e5", "notación científica"),
        ("1,23457E+11", "notación científica (así muestra Excel los números largos)"),
        ("NaN", "«NaN» no es un número: ingresá el precio"),
        ("-Infinity", "no es un número"),
        ("inf", "no es un número"),
        ("12abc", "El precio tiene letras («12abc»)"),
        ("10,555", "más de 2 decimales"),
        ("18.250", "Si son 18250 pesos, escribilo sin punto de miles"),
        ("1.2.3", "no es un número válido"),
        ("١٢٣", "no es un número válido"),  # Arabic-Indic digits: only 0-9
        ("1000000000000", "es demasiado grande: el máximo es 999.999.999.999,99"),
        ("999999999999,995", "más de 2 decimales"),
        (TWENTY_NINE_DIGITS, "es demasiado grande"),
        ("9" * 5000 + ",50", "es demasiado grande"),
    ],
)
def test_prices_refused_with_what_to_do(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as refused:
        parse_price(text)
    assert message in str(refused.value)


def test_a_huge_value_is_not_echoed_whole() -> None:
    with pytest.raises(QuantityError) as refused:
        parse_price("9" * 100_000)
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("1500", 1500), (" 12 ", 12), ("1 500", 1500), ("999999999999", MAX_STOCK - 1)],
)
def test_stock_as_stores_write_it(text: str, expected: int) -> None:
    assert parse_stock(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Falta el stock."),
        ("-1", "El stock no puede ser negativo («-1»): ingresá 0 o más."),
        ("1.500", "sin decimales ni puntos de miles"),
        ("2,5", "sin decimales ni puntos de miles"),
        ("1E+12", "notación científica"),
        ("NaN", "El stock tiene que ser un número entero («NaN»"),
        ("1000000000000", "demasiado grande: el máximo es 999.999.999.999"),
        (TWENTY_NINE_DIGITS, "demasiado grande"),
        ("9" * 5000, "demasiado grande"),  # int() of it would raise an English ValueError
    ],
)
def test_stock_refused_with_what_to_do(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as refused:
        parse_stock(text)
    assert message in str(refused.value)


@given(st.text())
def test_any_text_is_a_value_or_a_quantity_error(text: str) -> None:
    for parse in (parse_stock, parse_price):
        try:
            value = parse(text)
        except QuantityError as e:
            assert str(e)
        else:
            assert 0 <= value < (MAX_STOCK if parse is parse_stock else MAX_PRICE)


@given(st.decimals(allow_nan=True, allow_infinity=True) | st.integers().map(Decimal))
def test_conversions_never_raise_and_stay_in_range(value: Decimal) -> None:
    units = whole_units(value)
    assert units is None or -MAX_STOCK < units < MAX_STOCK
    cents = to_cents(value)
    assert cents is None or (-MAX_PRICE < cents < MAX_PRICE and cents == cents.quantize(cents))


def test_conversions_for_the_erp() -> None:
    assert whole_units(Decimal("2.999")) == 2  # floored
    assert whole_units(Decimal("-0.5")) == -1  # the engine makes negatives 0
    assert whole_units(Decimal("1E+100000000")) is None  # never built as an int
    assert whole_units(Decimal("NaN")) is None
    assert to_cents(Decimal("1234.565")) == Decimal("1234.57")  # half up
    assert to_cents(Decimal("999999999999.995")) is None  # rounds to the cap
    assert to_cents(Decimal(TWENTY_NINE_DIGITS)) is None  # quantize would trap
    assert to_cents(Decimal("1" * 14)) is None  # quantizes fine, over the cap
    assert bounded_decimal(10**70) is None and bounded_decimal(True) is None
    assert bounded_decimal(Decimal("1E-70")) is None
    assert bounded_decimal(Decimal("18250.5")) == Decimal("18250.5")
