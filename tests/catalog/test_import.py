"""CSV import: the page's report, every way a file can be wrong, and all-or-nothing."""

import io
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError
from django.test import Client
from django.urls import reverse

from catalog import csv_import
from catalog.csv_import import NOTHING_IMPORTED, check_csv, import_csv
from catalog.models import ChangeSource, Item, ItemChange
from stores.models import Store
from tests.catalog.conftest import MakeItem, snapshot, upload

HEADER = "sku,name,stock,wholesale_price\n"


def items(store: Store) -> dict[str, tuple[str, int, Decimal]]:
    rows = Item.objects.filter(store=store).values_list("sku", "name", "stock", "wholesale_price")
    return {sku: (name, stock, price) for sku, name, stock, price in rows}


def run(store: Store, content: bytes | str) -> csv_import.ImportReport:
    data = content.encode() if isinstance(content, str) else content
    return import_csv(store, io.BytesIO(data), actor="test")


# ----- the page ----------------------------------------------------------------------


def test_import_creates_updates_and_reports(
    admin_client: Client, store: Store, make_item: MakeItem, admin_user: Any
) -> None:
    make_item("ACE-1", "Aceite", stock=5, price="100.00")
    make_item("HAR-1", "Harina", stock=7, price="50.00")
    content = (
        HEADER
        + "ACE-1,Aceite,8,120.50\n"  # stock and price change
        + "HAR-1,Harina,7,50\n"  # unchanged
        + "TOR-1,Tornillo,0,3400\n"  # new
    )

    response = upload(admin_client, store, content)

    page = response.content.decode()
    report = response.context["report"]
    assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
    assert "Importación lista: creados 1, actualizados 1, sin cambios 1." in page
    assert items(store) == {
        "ACE-1": ("Aceite", 8, Decimal("120.50")),
        "HAR-1": ("Harina", 7, Decimal("50.00")),
        "TOR-1": ("Tornillo", 0, Decimal("3400.00")),
    }
    change = ItemChange.objects.get(item__sku="ACE-1")
    assert change.source == ChangeSource.CSV
    assert change.user == admin_user and change.actor == "admin@sur.test"
    assert (change.old_stock, change.new_stock) == (5, 8)
    assert (change.old_price, change.new_price) == (Decimal("100.00"), Decimal("120.50"))
    # A created item's history starts with where its values came from; unchanged: none.
    created = ItemChange.objects.get(item__sku="TOR-1")
    assert (created.old_stock, created.new_stock, created.new_price) == (None, 0, Decimal("3400"))
    assert not ItemChange.objects.filter(item__sku="HAR-1").exists()


def test_importing_the_same_file_twice_changes_nothing_the_second_time(store: Store) -> None:
    content = HEADER + "A,Uno,1,1.00\nB,Dos,2,2.00\n"
    run(store, content)
    before = snapshot(store)

    report = run(store, content)

    assert (report.created, report.updated, report.unchanged) == (0, 0, 2)
    assert snapshot(store) == before


def test_name_change_alone_updates_without_history(store: Store, make_item: MakeItem) -> None:
    make_item("A", "Viejo nombre", stock=1, price="1.00")
    report = run(store, HEADER + "A,Nuevo nombre,1,1.00\n")
    assert report.updated == 1
    assert items(store)["A"][0] == "Nuevo nombre"
    assert not ItemChange.objects.exists()


def test_sku_is_trimmed_and_matched_exactly(store: Store, make_item: MakeItem) -> None:
    make_item("ACE-1", stock=1)
    report = run(store, HEADER + "  ACE-1  , Aceite ,2,10\n")
    assert (report.created, report.updated) == (0, 1)
    assert items(store)["ACE-1"] == ("Aceite", 2, Decimal("10.00"))


def test_sku_differing_only_in_case_updates_the_item_and_keeps_its_sku(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    make_item("ACE-1", stock=1)
    response = upload(admin_client, store, HEADER + "ace-1,Aceite,2,10\n")
    report = response.context["report"]
    assert (report.created, report.updated) == (0, 1)
    assert items(store) == {"ACE-1": ("Aceite", 2, Decimal("10.00"))}


def test_import_leaves_other_stores_alone(
    store: Store, other_store: Store, make_item: MakeItem
) -> None:
    make_item("A", "Ajeno", stock=9, price="9.00", in_store=other_store)
    run(store, HEADER + "A,Propio,1,1.00\n")
    assert items(other_store) == {"A": ("Ajeno", 9, Decimal("9.00"))}
    assert items(store) == {"A": ("Propio", 1, Decimal("1.00"))}


def test_import_page_of_other_store_is_404(admin_client: Client, other_store: Store) -> None:
    url = reverse("catalog:import", args=[other_store.slug])
    assert admin_client.get(url).status_code == 404
    assert upload(admin_client, other_store, HEADER + "A,B,1,1\n").status_code == 404
    assert not Item.objects.exists()


def test_import_page_explains_the_format(admin_client: Client, store: Store) -> None:
    html = admin_client.get(reverse("catalog:import", args=[store.slug])).content.decode()
    assert "sku,name,stock,wholesale_price" in html
    assert 'enctype="multipart/form-data"' in html


def test_too_large_file_is_refused_clearly(
    admin_client: Client, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("catalog.forms.MAX_FILE_BYTES", 1024 * 1024)
    response = upload(admin_client, store, HEADER + "A,B,1,1\n" * 200_000)
    assert "El archivo pesa 1,5 MB y el máximo es 1 MB" in response.content.decode()
    assert not Item.objects.exists()


def test_empty_file_is_refused(
    admin_client: Client, store: Store, existing: tuple[list[tuple[Any, ...]], int]
) -> None:
    response = upload(admin_client, store, b"")
    assert "El archivo está vacío." in response.content.decode()
    assert run(store, b"").file_error == "No se importó nada. El archivo está vacío."
    assert snapshot(store) == existing


def test_upload_without_file_asks_for_one(admin_client: Client, store: Store) -> None:
    response = admin_client.post(reverse("catalog:import", args=[store.slug]), {})
    assert "Elegí un archivo CSV." in response.content.decode()


# ----- formats Excel produces --------------------------------------------------------


def test_semicolon_delimiter_with_decimal_comma(store: Store) -> None:
    report = run(store, "sku;name;stock;wholesale_price\r\nA;Aceite, girasol;3;18250,50\r\n")
    assert report.applied and report.delimiter == ";"
    assert items(store) == {"A": ("Aceite, girasol", 3, Decimal("18250.50"))}


def test_cp1252_file_from_excel(store: Store) -> None:
    content = (HEADER + "Ñ-1,Ñandú “premium” 1½ kg,3,10\n").encode("cp1252")
    report = run(store, content)
    assert report.applied and report.encoding == "cp1252"
    assert items(store) == {"Ñ-1": ("Ñandú “premium” 1½ kg", 3, Decimal("10.00"))}


def test_utf8_with_bom(store: Store) -> None:
    report = run(store, ("\ufeff" + HEADER + "A,Café,1,2\n").encode("utf-8"))
    assert report.applied
    assert items(store) == {"A": ("Café", 1, Decimal("2.00"))}


def test_columns_in_any_order_trailing_empty_columns_and_blank_lines(store: Store) -> None:
    content = "Wholesale_Price;SKU;Name;Stock;;\n\n10;A;Uno;1;;\n;;;;;\n\n5,5;B;Dos;2;;\n;;;;;\n"
    report = run(store, content)
    assert report.rows == 2
    assert items(store) == {
        "A": ("Uno", 1, Decimal("10.00")),
        "B": ("Dos", 2, Decimal("5.50")),
    }


def test_export_file_imports_back_unchanged(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    make_item("A", "Aceite, 900 ml", stock=3, price="18250.50")
    make_item("B", 'Tornillo 1/2"', stock=0, price="1.00")
    response: Any = admin_client.get(reverse("catalog:export", args=[store.slug]))
    exported = b"".join(response.streaming_content)
    report = run(store, exported)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 2)


def test_quoted_names_may_span_lines(store: Store) -> None:
    report = run(store, HEADER + 'A,"Caja\nx 12",1,1\nB,Dos,1,1\n')
    assert report.applied
    assert items(store)["A"][0] == "Caja\nx 12"


def test_many_chunks_are_all_applied(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 3)
    Item.objects.create(store=store, sku="S04", name="x", stock=0, wholesale_price=1)
    content = HEADER + "".join(f"S{i:02d},N{i},{i},{i}.50\n" for i in range(10))
    report = run(store, content)
    assert (report.created, report.updated) == (9, 1)
    assert items(store)["S07"] == ("N7", 7, Decimal("7.50"))
    assert ItemChange.objects.count() == 10


# ----- bad files: nothing is written -------------------------------------------------


@pytest.fixture
def existing(store: Store, make_item: MakeItem) -> tuple[list[tuple[Any, ...]], int]:
    make_item("ACE-1", "Aceite", stock=5, price="100.00")
    return snapshot(store)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"\r\n\r\n", "El archivo está vacío", id="blank"),
        pytest.param(HEADER, "ningún producto", id="header-only"),
        pytest.param(
            "codigo,descripcion,cantidad,precio\nA,B,1,1\n",
            "Falta el encabezado o no es el esperado",
            id="wrong-header",
        ),
        pytest.param(
            "ACE-1,Aceite,8,120\nB,Dos,1,1\n",
            "La primera fila tiene que ser: sku,name,stock,wholesale_price",
            id="missing-header",
        ),
        pytest.param(
            "sku,name,stock\nA,B,1\n", "faltan las columnas wholesale_price", id="missing-column"
        ),
        pytest.param(
            "sku,name,stock,wholesale_price,precio_minorista\nA,B,1,1,2\n",
            "no reconocemos las columnas «precio_minorista»",
            id="unknown-column",
        ),
        pytest.param(
            "sku|name|stock|wholesale_price\nA|B|1|1\n",
            "Falta el encabezado o no es el esperado",
            id="wrong-delimiter",
        ),
        pytest.param(
            b"PK\x03\x04\x14\x00\x06\x00binary-xlsx-content", "es un Excel (.xlsx)", id="xlsx"
        ),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "datos binarios", id="binary"),
        pytest.param(
            "\ufeffsku,name,stock,wholesale_price\n".encode("utf-16"), "UTF-16", id="utf-16"
        ),
        pytest.param(
            HEADER + 'A,"Sin cerrar,1,1\n' + "B,x,1,1\n" * 5 + "C," + "y" * 140_000 + ",1,1\n",
            "comillas sin cerrar",
            id="unterminated-quote",
        ),
    ],
)
def test_file_level_problems_write_nothing_and_say_what_to_do(
    admin_client: Client,
    store: Store,
    existing: tuple[list[tuple[Any, ...]], int],
    content: bytes | str,
    message: str,
) -> None:
    response = upload(admin_client, store, content)

    page = response.content.decode()
    report = response.context["report"]
    assert not report.applied
    assert report.file_error.startswith("No se importó nada")
    assert message in report.file_error
    assert message in page
    assert snapshot(store) == existing


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (",Sin SKU,1,1", "Falta el SKU."),
        ("B,,1,1", "Falta el nombre."),
        ("B,Dos,-3,1", "El stock no puede ser negativo"),
        ("B,Dos,2.5,1", "número entero, sin decimales"),
        ("B,Dos,muchos,1", "El stock tiene que ser un número entero («muchos»"),
        ("B,Dos,1,12abc", "El precio tiene letras («12abc»)"),
        ("B,Dos,1,-5", "El precio no puede ser negativo"),
        ("B,Dos,1,10.555", "El precio tiene más de 2 decimales («10.555»)"),
        ("B,Dos,1,", "Falta el precio."),
        ("B," + "n" * 301 + ",1,1", "El nombre tiene 301 caracteres (máximo 300)"),
        ("B" * 101 + ",Dos,1,1", "El SKU tiene 101 caracteres (máximo 100)"),
        ("B,Dos,1", "Faltan columnas: tiene 3 y se esperan 4"),
        ("B,Dos,1,18250,50", "¿Un precio con coma decimal sin comillas?"),
    ],
)
def test_a_bad_row_is_reported_with_its_line_and_nothing_is_written(
    admin_client: Client,
    store: Store,
    existing: tuple[list[tuple[Any, ...]], int],
    row: str,
    reason: str,
) -> None:
    content = HEADER + "ACE-1,Aceite,99,1.00\nNEW-1,Nuevo,1,1\n" + row + "\n"

    response = upload(admin_client, store, content)

    page = response.content.decode()
    report = response.context["report"]
    assert not report.applied
    assert [(e.line, reason in e.reason) for e in report.errors] == [(4, True)]
    assert str(NOTHING_IMPORTED) in page
    assert reason in page
    assert snapshot(store) == existing


def test_duplicate_sku_reports_both_lines(
    store: Store, existing: tuple[list[tuple[Any, ...]], int]
) -> None:
    report = run(store, HEADER + "A,Uno,1,1\nB,Dos,1,1\nA,Otra vez,2,2\n")
    assert [(e.line, e.sku, e.reason) for e in report.errors] == [
        (4, "A", "SKU repetido: «A» está en las líneas 2 y 4.")
    ]
    assert snapshot(store) == existing


def test_every_bad_row_is_reported_at_once(
    store: Store, existing: tuple[list[tuple[Any, ...]], int]
) -> None:
    report = run(store, HEADER + "A,Uno,-1,1\nB,Dos,1,1\nC,Tres,1,x\n\nD,,1,1\n")
    assert [e.line for e in report.errors] == [2, 4, 6]
    assert report.rows == 4
    assert snapshot(store) == existing


def test_binary_data_past_the_start_of_the_file_is_a_bad_row_and_nothing_is_written(
    store: Store, existing: tuple[list[tuple[Any, ...]], int]
) -> None:
    # The first 4 KB are checked as a whole; this NUL comes later.
    good = "".join(f"OK-{i:04d},Bueno,1,1\n" for i in range(300))
    report = run(store, HEADER + good + "MAL-1,Con\x00nulo,1,1\n")
    assert [(e.line, e.sku) for e in report.errors] == [(302, "MAL-1")]
    assert "caracteres nulos" in report.errors[0].reason
    assert not report.applied
    assert snapshot(store) == existing


def test_unclosed_quote_is_pointed_out(
    store: Store, existing: tuple[list[tuple[Any, ...]], int]
) -> None:
    report = run(store, HEADER + 'A,"Sin cerrar,1,1\nB,Dos,1,1\n')
    assert [e.line for e in report.errors] == [2]
    assert "¿hay comillas sin cerrar?" in report.errors[0].reason
    assert snapshot(store) == existing


def test_error_list_is_capped_but_counted(store: Store) -> None:
    report = run(store, HEADER + "A,Uno,-1,1\n" * 600)
    assert report.error_count == 600
    assert len(report.errors) == csv_import.MAX_REPORTED_ERRORS
    assert report.errors_truncated


def test_a_database_error_half_way_rolls_everything_back(
    store: Store,
    existing: tuple[list[tuple[Any, ...]], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    real_create = csv_import.CatalogWriter.create_items
    calls = []

    def failing_second_time(self: Any, rows: Any) -> Any:
        calls.append(rows)
        if len(calls) == 2:
            raise IntegrityError("UNIQUE constraint failed")
        return real_create(self, rows)

    monkeypatch.setattr(csv_import.CatalogWriter, "create_items", failing_second_time)
    content = HEADER + "ACE-1,Aceite,1,1\n" + "".join(f"N{i},x,1,1\n" for i in range(5))

    report = run(store, content)

    assert len(calls) == 2  # the first chunk had been written...
    assert not report.applied
    assert "el catálogo cambió mientras se importaba" in report.file_error
    assert snapshot(store) == existing  # ...and was rolled back


def test_check_csv_validates_without_writing(store: Store) -> None:
    report = check_csv(io.BytesIO((HEADER + "A,Uno,1,1\nB,Dos,x,1\n").encode()))
    assert report.rows == 2 and report.error_count == 1
    assert not Item.objects.exists()
