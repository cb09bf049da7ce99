"""Helpers for the catalog tests: items, uploads, and a snapshot of what is stored."""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from catalog.models import Item, ItemChange
from stores.models import Store

MakeItem = Callable[..., Item]


@pytest.fixture
def make_item(store: Store) -> MakeItem:
    def make(
        sku: str,
        name: str | None = None,
        stock: int = 10,
        price: str = "100.00",
        *,
        in_store: Store | None = None,
    ) -> Item:
        return Item.objects.create(
            store=in_store or store,
            sku=sku,
            name=name or f"Producto {sku}",
            stock=stock,
            wholesale_price=Decimal(price),
        )

    return make


def snapshot(store: Store) -> tuple[list[tuple[Any, ...]], int]:
    """Every item of the store and how many history rows it has: to prove nothing moved."""
    items = Item.objects.filter(store=store).order_by("sku")
    return (
        list(items.values_list("sku", "name", "stock", "wholesale_price", "updated_at")),
        ItemChange.objects.filter(store=store).count(),
    )


def upload(client: Client, store: Store, content: bytes | str, name: str = "catalogo.csv") -> Any:
    if isinstance(content, str):
        content = content.encode()
    url = reverse("catalog:import", args=[store.slug])
    return client.post(url, {"file": SimpleUploadedFile(name, content, "text/csv")})
