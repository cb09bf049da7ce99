"""The NonSistemas wire format: numbers, timestamps, URLs, items and page shapes."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from erp.errors import ErpError, ErrorCode
from erp.nonsistemas import wire

ART = timezone(timedelta(hours=-3))


# ---- numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("340.000", Decimal("340.000")),
        ("18250.00", Decimal("18250.00")),
        ("-3.000", Decimal("-3.000")),  # a sale without stock
        ("0.125", Decimal("0.125")),  # sold by weight
        ("7", Decimal("7")),
        (" 12.50 ", Decimal("12.50")),
        # Legacy instances (< 4.2): JSON numbers.
        (340, Decimal("340")),
        (-2, Decimal("-2")),
        (18250.5, Decimal("18250.5")),
        (0.1, Decimal("0.1")),  # not 0.1000000000000000055511151231257827...
        (1.005, Decimal("1.005")),
        (Decimal("3.10"), Decimal("3.10")),
    ],
)
def test_parse_decimal_reads_strings_and_legacy_numbers(raw: object, expected: Decimal) -> None:
    value = wire.parse_decimal(raw)
    assert value == expected
    assert str(value) == str(expected)  # exact digits, no float noise


@pytest.mark.parametrize(
    "raw",
    [
        None,
        True,
        False,
        float("nan"),
        float("inf"),
        float("-inf"),
        Decimal("NaN"),
        Decimal("Infinity"),
        "NaN",
        "Infinity",
        "",
        "abc",
        "18.250,00",  # thousands separator and decimal comma
        "18,250.00",
        "1e5",
        "+5",
        "5.",
        ".5",
        "1" * 100,
        [],
        {"valor": "1"},
    ],
)
def test_parse_decimal_rejects_everything_else(raw: object) -> None:
    assert wire.parse_decimal(raw) is None


# ---- timestamps ---------------------------------------------------------------------


def test_parse_timestamp_keeps_the_offset_and_is_aware() -> None:
    moment = wire.parse_timestamp("2026-11-20T14:03:11-03:00")
    assert moment == datetime(2026, 11, 20, 14, 3, 11, tzinfo=ART)
    assert moment is not None and moment.utcoffset() == timedelta(hours=-3)


def test_parse_timestamp_accepts_z_and_other_offsets() -> None:
    assert wire.parse_timestamp("2026-11-20T17:03:11Z") == datetime(
        2026, 11, 20, 14, 3, 11, tzinfo=ART
    )
    assert wire.parse_timestamp("2026-11-20T18:03:11+01:00") == datetime(
        2026, 11, 20, 14, 3, 11, tzinfo=ART
    )


def test_parse_timestamp_floors_milliseconds_to_the_second() -> None:
    # An instance stamping milliseconds: the reader pages by whole seconds.
    assert wire.parse_timestamp("2026-11-20T14:03:11.999-03:00") == datetime(
        2026, 11, 20, 14, 3, 11, tzinfo=ART
    )


def test_parse_timestamp_without_offset_is_instance_local_time() -> None:
    moment = wire.parse_timestamp("2026-11-20T14:03:11")
    assert moment == datetime(2026, 11, 20, 17, 3, 11, tzinfo=UTC)


@pytest.mark.parametrize("raw", [None, "", "ayer", "2026-13-01T00:00:00-03:00", 1763658191, []])
def test_parse_timestamp_unreadable_is_none(raw: object) -> None:
    assert wire.parse_timestamp(raw) is None


# ---- desde ----------------------------------------------------------------------------


def test_format_desde_has_an_explicit_offset() -> None:
    moment = datetime(2026, 11, 20, 14, 3, 11, tzinfo=ART)
    assert wire.format_desde(moment) == "2026-11-20T14:03:11-03:00"


def test_format_desde_converts_utc_and_other_offsets_to_instance_time() -> None:
    assert wire.format_desde(datetime(2026, 11, 20, 17, 3, 11, tzinfo=UTC)) == (
        "2026-11-20T14:03:11-03:00"
    )
    madrid = timezone(timedelta(hours=1))
    assert wire.format_desde(datetime(2026, 11, 20, 18, 3, 11, tzinfo=madrid)) == (
        "2026-11-20T14:03:11-03:00"
    )
    # Across midnight: the date changes too.
    assert wire.format_desde(datetime(2026, 11, 21, 1, 30, 0, tzinfo=UTC)) == (
        "2026-11-20T22:30:00-03:00"
    )


def test_format_desde_floors_fractions_never_rounds_up() -> None:
    # Rounding .999 up to :12 would skip changes made during second :11.
    moment = datetime(2026, 11, 20, 14, 3, 11, 999_999, tzinfo=ART)
    assert wire.format_desde(moment) == "2026-11-20T14:03:11-03:00"
    before_epoch_like = datetime(2026, 11, 20, 17, 3, 11, 500_000, tzinfo=UTC)
    assert wire.format_desde(before_epoch_like) == "2026-11-20T14:03:11-03:00"


def test_format_desde_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        wire.format_desde(datetime(2026, 11, 20, 14, 3, 11))


def test_stock_params() -> None:
    since = datetime(2026, 11, 20, 17, 3, 11, tzinfo=UTC)
    assert wire.stock_params(desde=since, pagina=2, por_pagina=1000) == {
        "pagina": "2",
        "por_pagina": "1000",
        "desde": "2026-11-20T14:03:11-03:00",
    }
    assert "desde" not in wire.stock_params(desde=None, pagina=1, por_pagina=1)
    for bad in ({"pagina": 0, "por_pagina": 10}, {"pagina": 1, "por_pagina": 1001}):
        with pytest.raises(ValueError):
            wire.stock_params(desde=None, **bad)
    assert wire.MAX_PAGE_SIZE == 1000


# ---- URLs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://mycompany.nonsistemas.com", "https://mycompany.nonsistemas.com/api/stock"),
        ("https://mycompany.nonsistemas.com/", "https://mycompany.nonsistemas.com/api/stock"),
        ("https://erp.example.com/ns", "https://erp.example.com/ns/api/stock"),
        ("https://erp.example.com/ns/", "https://erp.example.com/ns/api/stock"),
        ("https://erp.example.com/a/b//", "https://erp.example.com/a/b/api/stock"),
        ("  http://10.0.0.5:8080/ns/  ", "http://10.0.0.5:8080/ns/api/stock"),
        ("HTTPS://Erp.Example.com/NS", "https://Erp.Example.com/NS/api/stock"),
        ("https://erp.example.com/ns/?x=1#frag", "https://erp.example.com/ns/api/stock"),
        ("http://[::1]:8000/ns", "http://[::1]:8000/ns/api/stock"),
    ],
)
def test_endpoint_url_keeps_the_prefix(base: str, expected: str) -> None:
    assert wire.endpoint_url(base, wire.STOCK_PATH) == expected


@pytest.mark.parametrize(
    "base",
    ["", "erp.example.com", "ftp://erp.example.com", "https://", "http://host:99999/", "/ns"],
)
def test_endpoint_url_rejects_malformed_urls(base: str) -> None:
    with pytest.raises(ErpError) as caught:
        wire.endpoint_url(base, wire.STOCK_PATH)
    assert caught.value.code == ErrorCode.MALFORMED_URL
    assert caught.value.permanent


def test_endpoint_url_refuses_credentials_in_the_url() -> None:
    with pytest.raises(ErpError) as caught:
        wire.endpoint_url("https://api-ventas:s3cret@erp.example.com/", wire.STOCK_PATH)
    assert caught.value.code == ErrorCode.MALFORMED_URL
    assert "s3cret" not in caught.value.message


def test_display_url_drops_query_and_userinfo() -> None:
    assert wire.display_url("https://u:p@erp.example.com:8443/ns/?t=1") == (
        "https://erp.example.com:8443/ns/"
    )


# ---- items ----------------------------------------------------------------------------


def _item(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "codigo": "ACE-0001",
        "descripcion": "Aceite girasol 1.5 L caja x12",
        "stock": "340.000",
        "precio_mayorista": "18250.00",
        "moneda": "ARS",
        "activo": True,
        "modificado": "2026-11-20T14:03:11-03:00",
    }
    base.update(fields)
    return base


def test_parse_item_contract_example() -> None:
    item = wire.parse_item(_item())
    assert item.code == "ACE-0001"
    assert item.description == "Aceite girasol 1.5 L caja x12"
    assert item.stock == Decimal("340.000")
    assert item.price == Decimal("18250.00")
    assert item.currency == "ARS"
    assert item.active is True
    assert item.modified == datetime(2026, 11, 20, 14, 3, 11, tzinfo=ART)
    assert item.stock_raw == "340.000"
    assert item.price_raw == "18250.00"


def test_parse_item_keeps_the_code_as_typed() -> None:
    assert wire.parse_item(_item(codigo="  ace-0001 ")).code == "  ace-0001 "


@pytest.mark.parametrize("codigo", [None, 12, ["A"]])
def test_parse_item_code_not_a_string_is_empty(codigo: object) -> None:
    assert wire.parse_item(_item(codigo=codigo)).code == ""


def test_parse_item_missing_code_is_empty() -> None:
    data = _item()
    del data["codigo"]
    assert wire.parse_item(data).code == ""


def test_parse_item_legacy_numbers() -> None:
    item = wire.parse_item(_item(stock=340, precio_mayorista=18250.5))
    assert item.stock == Decimal("340")
    assert item.price == Decimal("18250.5")
    assert item.price_raw == 18250.5


def test_parse_item_negative_and_fractional_stock() -> None:
    assert wire.parse_item(_item(stock="-4.000")).stock == Decimal("-4.000")
    assert wire.parse_item(_item(stock="12.345")).stock == Decimal("12.345")
    assert wire.parse_item(_item(stock=-0.5)).stock == Decimal("-0.5")


def test_parse_item_null_price_is_no_price() -> None:
    item = wire.parse_item(_item(precio_mayorista=None))
    assert item.price is None
    assert item.price_raw is None


def test_parse_item_garbage_price_is_unreadable_with_raw_kept() -> None:
    item = wire.parse_item(_item(precio_mayorista="18.250,00"))
    assert item.price is None
    assert item.price_raw == "18.250,00"
    item = wire.parse_item(_item(precio_mayorista=True))
    assert item.price is None
    assert item.price_raw is True


def test_parse_item_absent_price_is_unreadable_not_no_price() -> None:
    data = _item()
    del data["precio_mayorista"]
    item = wire.parse_item(data)
    assert item.price is None
    assert item.price_raw == wire.FIELD_ABSENT


def test_parse_item_unreadable_or_missing_stock() -> None:
    item = wire.parse_item(_item(stock="mucho"))
    assert (item.stock, item.stock_raw) == (None, "mucho")
    item = wire.parse_item(_item(stock=None))
    assert (item.stock, item.stock_raw) == (None, None)
    data = _item()
    del data["stock"]
    item = wire.parse_item(data)
    assert (item.stock, item.stock_raw) == (None, wire.FIELD_ABSENT)


def test_parse_item_defaults_of_old_instances() -> None:
    data = _item()
    del data["moneda"]
    del data["activo"]
    item = wire.parse_item(data)
    assert item.currency == "ARS"
    assert item.active is True


def test_parse_item_currency_and_active_values() -> None:
    assert wire.parse_item(_item(moneda="USD")).currency == "USD"
    assert wire.parse_item(_item(moneda=" usd ")).currency == "USD"
    assert wire.parse_item(_item(moneda=7)).currency == ""  # the engine rejects it
    assert wire.parse_item(_item(activo=False)).active is False
    assert wire.parse_item(_item(activo=0)).active is False
    assert wire.parse_item(_item(activo=None)).active is True


def test_parse_item_unparseable_modified_is_none() -> None:
    assert wire.parse_item(_item(modificado="ayer")).modified is None
    data = _item()
    del data["modificado"]
    assert wire.parse_item(data).modified is None


def test_parse_item_not_an_object() -> None:
    item = wire.parse_item("ACE-0001")
    assert item.code == ""
    assert item.stock is None
    assert item.price is None


# ---- pages ------------------------------------------------------------------------------


def _page(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "pagina": 1,
        "por_pagina": 500,
        "total_items": 3120,
        "total_paginas": 7,
        "hora_servidor": "2026-11-26T13:00:00-03:00",
        "items": [_item(), _item(codigo="ACE-0002", precio_mayorista=None)],
    }
    base.update(fields)
    return base


def test_parse_stock_page() -> None:
    page = wire.parse_stock_page(_page())
    assert (page.pagina, page.por_pagina, page.total_items, page.total_paginas) == (
        1,
        500,
        3120,
        7,
    )
    assert page.hora_servidor == datetime(2026, 11, 26, 13, 0, tzinfo=ART)
    assert [item.code for item in page.items] == ["ACE-0001", "ACE-0002"]
    assert page.items[1].price is None


def test_parse_stock_page_empty_and_unreadable_server_time() -> None:
    page = wire.parse_stock_page(_page(items=[], total_items=0, total_paginas=0, hora_servidor=1))
    assert page.items == []
    assert page.hora_servidor is None


def test_parse_stock_page_one_bad_item_does_not_fail_the_page() -> None:
    page = wire.parse_stock_page(_page(items=[_item(), 42, _item(stock="x")]))
    assert [item.code for item in page.items] == ["ACE-0001", "", "ACE-0001"]


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "pagina 1",
        _page(items=None),
        _page(items={"ACE-0001": {}}),
        {k: v for k, v in _page().items() if k != "items"},
        _page(pagina="1"),
        _page(total_items=3120.0),
        _page(total_paginas=None),
        _page(por_pagina=True),
        {k: v for k, v in _page().items() if k != "total_items"},
    ],
)
def test_parse_stock_page_wrong_shape_is_bad_response(body: object) -> None:
    with pytest.raises(ErpError) as caught:
        wire.parse_stock_page(body)
    assert caught.value.code == ErrorCode.BAD_RESPONSE
    assert not caught.value.permanent


@pytest.mark.parametrize(
    "body",
    [
        _page(pagina=0),
        _page(por_pagina=0),
        _page(total_items=-1),
        _page(por_pagina=1),  # two items on a page of one
    ],
)
def test_parse_stock_page_impossible_counters_are_absurd(body: object) -> None:
    with pytest.raises(ErpError) as caught:
        wire.parse_stock_page(body)
    assert caught.value.code == ErrorCode.ABSURD_RESPONSE


# ---- other answers ------------------------------------------------------------------------


def test_parse_version() -> None:
    assert wire.parse_version({"producto": "NonSistemas", "version": "4.3.1"}) == "4.3.1"
    assert wire.parse_version({"producto": "Gestionar Plus", "version": "1"}) is None
    assert wire.parse_version(["NonSistemas"]) is None


def test_parse_login() -> None:
    answer = wire.parse_login({"token": "abc123", "tipo": "Bearer", "expira_en": 1800})
    assert answer == wire.LoginAnswer("abc123", 1800.0)
    assert wire.parse_login({"token": "abc", "expira_en": "1800"}) == wire.LoginAnswer("abc", None)
    assert wire.parse_login({"token": ""}) is None
    assert wire.parse_login({"token": "a b"}) is None  # would break the header
    assert wire.parse_login({"token": "abc\r\nX-Evil: 1"}) is None
    assert wire.parse_login("abc") is None


def test_parse_error_body() -> None:
    body = {"error": {"codigo": "token_vencido", "mensaje": "El token expiró"}}
    assert wire.parse_error_body(body) == ("token_vencido", "El token expiró")
    assert wire.parse_error_body({"error": "x"}) == (None, None)
    assert wire.parse_error_body("<html>") == (None, None)
