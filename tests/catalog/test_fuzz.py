"""Arbitrary input to the item form and the CSV import: never a 500, never half written.

Each example either applies (and the catalog then holds exactly what was sent) or
is refused with a message, leaving every item and its history as they were. The
test client re-raises any exception a view lets escape, which is what a 500 page
would be.
"""

import csv
import io
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from catalog.csv_import import COLUMNS, import_csv
from catalog.models import Item
from catalog.quantities import QuantityError, parse_price, parse_stock
from stores.models import Store
from tests.catalog.conftest import MakeItem, snapshot, upload

FUZZ = settings(
    max_examples=150,
    deadline=None,
    # One store, item and client for all examples: each example checks its own
    # before/after, so what earlier examples applied does not matter.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# What breaks number parsers, and what stores really write.
NASTY = [
    "",
    " ",
    "0",
    "-0",
    "-1",
    "\u22125",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-inf",
    "1e5",
    "1E+400",
    "1,23457E+11",
    "1" * 29,
    "9" * 40,
    "9" * 300,
    "999999999999,99",
    "999999999999,995",
    "1000000000000",
    "1.234,56",
    "1,234.56",
    "$ 1.234,56",
    "$\u00a01.234,56",
    "1 500",
    "18.250",
    "١٢٣",
    "\uff11\uff12\uff13",  # fullwidth digits
    "\x00",
    "1\x002",
    "12abc",
    "--5",
    "$",
    ",",
    ".",
]
numberish = st.from_regex(r"[-+$ \u00a0]{0,2}[0-9.,eE \u2212]{0,45}", fullmatch=True)
field = st.one_of(
    st.sampled_from(NASTY),
    numberish,
    st.text(max_size=50),
    st.integers().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)


def _parsed(parse: Any, text: str) -> Any:
    try:
        return parse(text)
    except QuantityError:
        return None


# ----- the item form -----------------------------------------------------------------


@FUZZ
# Always tried, whatever the random draw: the values that were 500 pages.
@example(stock="1", price="1" * 29, seen_stock=None, seen_price=None)
@example(stock="1", price="5", seen_stock="9" * 29, seen_price="1" * 29)
@example(stock="9" * 29, price="1E+400", seen_stock=None, seen_price=None)
@given(
    stock=field,
    price=field,
    seen_stock=st.none() | field,
    seen_price=st.none() | field,
)
def test_item_form_never_500s_and_a_refused_edit_changes_nothing(
    admin_client: Client,
    store: Store,
    make_item: MakeItem,
    stock: str,
    price: str,
    seen_stock: str | None,
    seen_price: str | None,
) -> None:
    item = Item.objects.filter(store=store, sku="ACE-0001").first() or make_item("ACE-0001")
    data = {"stock": stock, "wholesale_price": price}
    if seen_stock is not None:
        data["seen_stock"] = seen_stock
    if seen_price is not None:
        data["seen_price"] = seen_price
    before = snapshot(store)

    response = admin_client.post(reverse("catalog:item", args=[store.slug, item.pk]), data)

    if response.status_code == 200:
        errors = response.context["form"].errors
        assert errors, "a 200 answer to a POST must be the form with its errors"
        assert all(message.strip() for messages in errors.values() for message in messages)
        assert snapshot(store) == before
    else:
        assert response.status_code == 302
        item.refresh_from_db()
        # Applied: each field is what was typed, or (left as seen) what it was.
        assert item.stock == parse_stock(stock) or _parsed(parse_stock, seen_stock or "") == (
            parse_stock(stock)
        )
        assert item.wholesale_price == parse_price(price) or _parsed(
            parse_price, seen_price or ""
        ) == parse_price(price)
        _, history = snapshot(store)
        assert history - before[1] in (0, 1)


# ----- the CSV import ----------------------------------------------------------------

sku = st.one_of(
    st.sampled_from(["ACE-0001", " ace-0001 ", "GAL+1%#,", "Café-Ñ", "ß" * 100, "x" * 101]),
    st.text(max_size=30),
)
row = st.tuples(sku, st.text(max_size=30), field, field)
extra_cells = st.lists(st.text(max_size=5), max_size=2)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A CSV with the right header and arbitrary rows: quoted by the csv module (any
    text in any cell), or raw lines joined by hand (stray quotes, wrong widths)."""
    rows = draw(st.lists(row, min_size=1, max_size=6))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    if draw(st.booleans()):
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter)
        writer.writerow(COLUMNS)
        for cells in rows:
            writer.writerow([*cells, *draw(extra_cells)])
        text = out.getvalue()
    else:
        lines = [delimiter.join(COLUMNS), *(delimiter.join(cells) for cells in rows)]
        text = "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
    return text.encode(encoding, errors="replace")


def _check_report(report: Any, store: Store, before: tuple[Any, ...]) -> None:
    if report.applied:
        assert report.ok
        assert report.created + report.updated + report.unchanged + report.ambiguous == report.rows
        assert Item.objects.filter(store=store).count() == len(before[0]) + report.created
    else:
        assert report.file_error or report.errors, "refused without saying why"
        assert all(error.reason.strip() for error in report.errors)
        assert snapshot(store) == before


@FUZZ
@example(content=b"sku;name;stock;wholesale_price\nA;B;1;" + b"1" * 29 + b"\n")
@example(content=("sku,name,stock,wholesale_price\n" + "ß" * 100 + ",B,1,2\n").encode())
@given(content=csv_files())
def test_import_csv_never_raises_and_a_refused_file_changes_nothing(
    store: Store, make_item: MakeItem, content: bytes
) -> None:
    if not Item.objects.filter(store=store).exists():
        make_item("ACE-0001")
    before = snapshot(store)

    report = import_csv(store, io.BytesIO(content), actor="fuzz")

    _check_report(report, store, before)


@FUZZ
@example(content=b"sku;name;stock;wholesale_price\nA;B;1;" + b"1" * 29 + b"\n")
@example(content=("sku,name,stock,wholesale_price\n" + "ß" * 100 + ",B,1,2\n").encode())
@given(content=csv_files() | st.binary(max_size=300))
def test_import_page_never_500s_and_a_refused_file_changes_nothing(
    admin_client: Client, store: Store, make_item: MakeItem, content: bytes
) -> None:
    if not Item.objects.filter(store=store).exists():
        make_item("ACE-0001")
    before = snapshot(store)

    response = upload(admin_client, store, content)

    assert response.status_code == 200
    report = response.context["report"]
    if report is None:  # the form refused the upload itself (an empty file)
        assert response.context["form"].errors
        assert snapshot(store) == before
    else:
        _check_report(report, store, before)


@pytest.mark.parametrize("price", ["1" * 29, "9" * 40, "1" * 27 + ",50"])
def test_a_29_digit_price_is_a_message_not_a_500(
    admin_client: Client, store: Store, make_item: MakeItem, price: str
) -> None:
    item = make_item("ACE-0001")
    before = snapshot(store)
    url = reverse("catalog:item", args=[store.slug, item.pk])

    form = admin_client.post(url, {"stock": "1", "wholesale_price": price})
    file = upload(admin_client, store, f"sku;name;stock;wholesale_price\nB;Dos;1;{price}\n")

    [error] = form.context["form"].errors["wholesale_price"]
    assert "es demasiado grande: el máximo es 999.999.999.999,99" in error
    [row] = file.context["report"].errors
    assert "es demasiado grande" in row.reason
    assert snapshot(store) == before

    seen = admin_client.post(url, {"stock": "1", "wholesale_price": "5", "seen_price": price})
    assert seen.status_code == 302  # a mangled hidden field only means "changed"
    item.refresh_from_db()
    assert item.wholesale_price == 5
