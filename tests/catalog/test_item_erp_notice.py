"""A manual edit on the item page says that the ERP's next update of the item
overwrites it, when the store takes stock and prices from an ERP; and it is true."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.test import Client
from django.urls import reverse

from catalog.models import Item
from stores.models import Store
from tests.erp.sync_helpers import connect, make_items, sync
from tests.erp.test_pages import text


def item_page(store: Store, sku: str) -> str:
    return reverse("catalog:item", args=[store.slug, Item.objects.get(store=store, sku=sku).pk])


def saved_messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_with_an_erp_the_page_and_the_saved_message_say_the_next_update_overwrites(
    admin_client: Client, store: Store, standin: Any
) -> None:
    connect(store, standin)
    make_items(store, [("Ñoquis 500 g", 10, "1234.56")])
    standin.load(
        [
            {
                "codigo": "ÑOQUIS 500 G",
                "descripcion": "Ñoquis",
                "stock": "10.000",
                "precio_mayorista": "1234.56",
                "moneda": "ARS",
                "activo": True,
                "modificado": (standin.now() - timedelta(days=1)).isoformat(timespec="seconds"),
            }
        ]
    )
    link = item_page(store, "Ñoquis 500 g")

    page = text(admin_client.get(link))
    assert "El stock y el precio de este producto los maneja NonSistemas." in page
    assert "La próxima actualización que lo traiga reemplaza lo que cambies acá" in page
    assert "para que un cambio quede, hacelo en NonSistemas, o bloqueá el producto" in page

    response = admin_client.post(link, {"stock": "12", "wholesale_price": "1.234,56"}, follow=True)
    [message] = saved_messages(response)
    assert message.startswith("Guardado: stock 10 → 12.")
    assert (
        "la próxima actualización desde NonSistemas que traiga este producto lo va a reemplazar"
        in (message)
    )
    assert "hacelo también en NonSistemas" in message

    # And it is so: the next update that brings the item puts the ERP's value back.
    sync(store, full=True)
    item = Item.objects.get(store=store, sku="Ñoquis 500 g")
    assert (item.stock, item.wholesale_price) == (10, Decimal("1234.56"))


def test_without_an_erp_nothing_is_said(admin_client: Client, store: Store) -> None:
    make_items(store, [("TIENDA-001", 10, "100.00")])
    link = item_page(store, "TIENDA-001")
    page = text(admin_client.get(link))
    assert "los maneja" not in page and "Bloquear" not in page
    response = admin_client.post(link, {"stock": "12", "wholesale_price": "100,00"}, follow=True)
    assert saved_messages(response) == ["Guardado: stock 10 → 12."]
