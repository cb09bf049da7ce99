"""Catalog export: CSV and JSON, streamed, only this store's items."""

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import openpyxl
from django.test import Client
from django.urls import reverse

from catalog import export
from catalog.models import Item
from stores.models import Store
from tests.catalog.conftest import MakeItem
from vxm import spreadsheets

UPDATED = datetime(2026, 3, 2, 15, 30, 5, tzinfo=UTC)


def download(client: Client, store: Store, fmt: str | None = None) -> Any:
    params = {"format": fmt} if fmt else {}
    return client.get(reverse("catalog:export", args=[store.slug]), params)


def body(response: Any) -> str:
    return b"".join(response.streaming_content).decode("utf-8")


def sample(store: Store, other_store: Store, make_item: MakeItem) -> None:
    make_item("B-2", 'Tornillo 1/2", caja', stock=0, price="18250")
    make_item("A-1", "Aceite", stock=120, price="99.5")
    make_item("X-9", "Ajeno", in_store=other_store)
    Item.objects.filter(store=store).update(updated_at=UPDATED)


def test_csv_download_opens_right_in_excel_in_argentina(
    admin_client: Client, store: Store, other_store: Store, make_item: MakeItem
) -> None:
    sample(store, other_store, make_item)
    make_item("ÑA 10+%#", "Ñoquis de acá; 1,5 kg", stock=3, price="1234.56")
    Item.objects.filter(store=store).update(updated_at=UPDATED)

    response = download(admin_client, store)

    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="catalogo-sur-')
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads accents right
    text = raw.decode("utf-8").removeprefix("\ufeff")
    assert text.splitlines()[0] == "SKU;Nombre;Stock;Precio mayorista;Actualizado"
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert sorted(rows[1:]) == sorted(
        [
            ["ÑA 10+%#", "Ñoquis de acá; 1,5 kg", "3", "1234,56", "02/03/2026 12:30:05"],
            ["A-1", "Aceite", "120", "99,50", "02/03/2026 12:30:05"],
            ["B-2", 'Tornillo 1/2", caja', "0", "18250,00", "02/03/2026 12:30:05"],
        ]
    )


def test_xlsx_download_has_numbers_dates_and_a_frozen_header(
    admin_client: Client, store: Store, other_store: Store, make_item: MakeItem
) -> None:
    sample(store, other_store, make_item)
    make_item("=1+1", "Ñandú", stock=7, price="1234.56")
    Item.objects.filter(store=store).update(updated_at=UPDATED)

    response = download(admin_client, store, "xlsx")

    assert response.status_code == 200
    assert response["Content-Type"] == spreadsheets.XLSX_CONTENT_TYPE
    assert ".xlsx" in response["Content-Disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = workbook.active
    assert sheet.title == "Catálogo"
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["B"].width > sheet.column_dimensions["C"].width
    rows = list(sheet.iter_rows(values_only=True))
    local = datetime(2026, 3, 2, 12, 30, 5)  # the store's time (-03:00), naive
    assert rows[0] == ("SKU", "Nombre", "Stock", "Precio mayorista", "Actualizado")
    assert sorted(rows[1:]) == [
        ("=1+1", "Ñandú", 7, 1234.56, local),  # the SKU is text, not a formula
        ("A-1", "Aceite", 120, 99.5, local),
        ("B-2", 'Tornillo 1/2", caja', 0, 18250, local),
    ]
    assert sheet["D2"].number_format == "#,##0.00"
    assert all(sheet.cell(row=r, column=1).data_type == "s" for r in range(2, 5))
    assert sheet["E2"].is_date


def test_json_download(
    admin_client: Client, store: Store, other_store: Store, make_item: MakeItem
) -> None:
    sample(store, other_store, make_item)

    response = download(admin_client, store, "json")

    assert response["Content-Type"] == "application/json"
    assert json.loads(body(response)) == [
        {
            "sku": "A-1",
            "name": "Aceite",
            "stock": 120,
            "wholesale_price": "99.50",
            "updated_at": "2026-03-02T12:30:05-03:00",
        },
        {
            "sku": "B-2",
            "name": 'Tornillo 1/2", caja',
            "stock": 0,
            "wholesale_price": "18250.00",
            "updated_at": "2026-03-02T12:30:05-03:00",
        },
    ]


def test_empty_catalog_exports_a_header_or_an_empty_list(
    admin_client: Client, store: Store
) -> None:
    assert body(download(admin_client, store)) == (
        "\ufeffSKU;Nombre;Stock;Precio mayorista;Actualizado\r\n"
    )
    assert json.loads(body(download(admin_client, store, "json"))) == []


def test_unknown_format_is_refused(admin_client: Client, store: Store) -> None:
    assert download(admin_client, store, "xml").status_code == 400


def test_other_store_export_is_404(admin_client: Client, other_store: Store) -> None:
    assert download(admin_client, other_store).status_code == 404


def test_export_walks_the_whole_catalog_in_chunks(store: Store) -> None:
    Item.objects.bulk_create(
        Item(store=store, sku=f"S{i:03d}", sku_key=f"s{i:03d}", name="x", wholesale_price=1)
        for i in range(7)
    )
    skus = [row[0] for row in export.iter_rows(store, chunk_size=3)]
    assert skus == [f"S{i:03d}" for i in range(7)]
    # The CLI's CSV has no BOM; one line per item plus the header.
    text = "".join(export.iter_csv(store))
    assert text.startswith("sku,") and text.count("\n") == 8
