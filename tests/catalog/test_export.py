"""Catalog export: CSV and JSON, streamed, only this store's items."""

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from django.test import Client
from django.urls import reverse

from catalog import export
from catalog.models import Item
from stores.models import Store
from tests.catalog.conftest import MakeItem

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


def test_csv_download(
    admin_client: Client, store: Store, other_store: Store, make_item: MakeItem
) -> None:
    sample(store, other_store, make_item)

    response = download(admin_client, store)

    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="catalogo-sur-')
    text = body(response)
    assert text.startswith("\ufeff")  # so Excel reads accents right
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows == [
        ["sku", "name", "stock", "wholesale_price", "updated_at"],
        ["A-1", "Aceite", "120", "99.50", "2026-03-02T12:30:05-03:00"],
        ["B-2", 'Tornillo 1/2", caja', "0", "18250.00", "2026-03-02T12:30:05-03:00"],
    ]
    assert datetime.fromisoformat(rows[1][4]) == UPDATED


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
    assert (
        body(download(admin_client, store)) == "\ufeffsku,name,stock,wholesale_price,updated_at\n"
    )
    assert json.loads(body(download(admin_client, store, "json"))) == []


def test_unknown_format_is_refused(admin_client: Client, store: Store) -> None:
    assert download(admin_client, store, "xlsx").status_code == 400


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
