"""The item page: details, history in the store's time zone, and the manual edit."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from catalog.models import ChangeSource, Item, ItemChange
from stores.models import Store
from tests.catalog.conftest import MakeItem


def item_url(item: Item) -> str:
    return reverse("catalog:item", args=[item.store.slug, item.pk])


def edit(client: Client, item: Item, stock: Any, price: Any, **seen: Any) -> Any:
    data = {"stock": stock, "wholesale_price": price, **seen}
    return client.post(item_url(item), data, follow=True)


def page_messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_item_page_shows_details(admin_client: Client, make_item: MakeItem) -> None:
    item = make_item("ACE-0001", "Aceite de girasol", stock=3, price="18250.50")

    html = admin_client.get(item_url(item)).content.decode()

    assert "ACE-0001" in html and "Aceite de girasol" in html
    assert "$ 18.250,50" in html
    assert "Stock bajo" in html


def test_history_is_newest_first_in_the_store_time_zone(
    admin_client: Client, store: Store, make_item: MakeItem, admin_user: Any
) -> None:
    store.time_zone = "Asia/Tokyo"  # UTC+9, unlike the server's Buenos Aires
    store.save()
    item = make_item("A-1", stock=5, price="10.00")
    ItemChange.objects.create(
        store=store,
        item=item,
        at=datetime(2026, 1, 10, 15, 0, tzinfo=UTC),
        source=ChangeSource.CSV,
        actor="ana@sur.test",
        old_stock=1,
        new_stock=5,
    )
    ItemChange.objects.create(
        store=store,
        item=item,
        at=datetime(2026, 1, 11, 15, 0, tzinfo=UTC),
        source=ChangeSource.MANUAL,
        actor="admin@sur.test",
        user=admin_user,
        old_price=Decimal("8.00"),
        new_price=Decimal("10.00"),
    )

    html = admin_client.get(item_url(item)).content.decode()

    newer, older = html.index("12/01/2026 00:00"), html.index("11/01/2026 00:00")
    assert newer < older
    assert "Edición manual" in html and "Importación CSV" in html
    assert "admin@sur.test" in html and "ana@sur.test" in html
    assert "$ 8,00 → $ 10,00" in html
    assert "1 → 5" in html


def test_history_is_paged_by_50(admin_client: Client, store: Store, make_item: MakeItem) -> None:
    item = make_item("A-1")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ItemChange.objects.bulk_create(
        ItemChange(
            store=store,
            item=item,
            at=start + timedelta(hours=i),
            source=ChangeSource.ERP,
            old_stock=i,
            new_stock=i + 1,
        )
        for i in range(60)
    )

    first = admin_client.get(item_url(item))
    older = first.context["history_page"].older_than
    second = admin_client.get(item_url(item), {"older_than": older})

    assert [c.new_stock for c in first.context["history"]] == list(range(60, 10, -1))
    assert [c.new_stock for c in second.context["history"]] == list(range(10, 0, -1))
    assert f"?older_than={older}" in first.content.decode()


def test_manual_edit_updates_item_and_writes_history(
    admin_client: Client, make_item: MakeItem, admin_user: Any
) -> None:
    item = make_item("A-1", stock=10, price="100.00")

    response = edit(admin_client, item, "12", "18.250,50")

    item.refresh_from_db()
    assert (item.stock, item.wholesale_price) == (12, Decimal("18250.50"))
    change = item.changes.get()
    assert change.source == ChangeSource.MANUAL
    assert change.user == admin_user and change.actor == "admin@sur.test"
    assert (change.old_stock, change.new_stock) == (10, 12)
    assert (change.old_price, change.new_price) == (Decimal("100.00"), Decimal("18250.50"))
    assert page_messages(response) == ["Guardado: stock 10 → 12 y precio $ 100,00 → $ 18.250,50."]
    assert "Edición manual" in response.content.decode()


@pytest.mark.parametrize("price", ["99.90", "99,90", "99,9", "$ 99,90"])
def test_price_accepts_comma_or_dot(admin_client: Client, make_item: MakeItem, price: str) -> None:
    item = make_item("A-1", price="100.00")
    edit(admin_client, item, "10", price)
    item.refresh_from_db()
    assert item.wholesale_price == Decimal("99.90")


def test_only_the_changed_field_is_recorded(admin_client: Client, make_item: MakeItem) -> None:
    item = make_item("A-1", stock=10, price="100.00")
    edit(admin_client, item, "0", "100,00")
    change = item.changes.get()
    assert (change.old_stock, change.new_stock) == (10, 0)
    assert change.old_price is None and change.new_price is None


def test_saving_without_changes_writes_no_history(
    admin_client: Client, make_item: MakeItem
) -> None:
    item = make_item("A-1", stock=10, price="100.00")

    response = edit(admin_client, item, "10", "100")

    assert not item.changes.exists()
    assert page_messages(response) == ["No hubo cambios: el stock y el precio ya eran esos."]


def test_a_stale_form_does_not_undo_a_price_changed_meanwhile(
    admin_client: Client, make_item: MakeItem
) -> None:
    item = make_item("A-1", stock=10, price="100.00")
    # The admin opened the page seeing 10 units at $100; then the ERP set $120.
    Item.objects.filter(pk=item.pk).update(wholesale_price=Decimal("120.00"))

    edit(admin_client, item, "7", "100,00", seen_stock="10", seen_price="100.00")

    item.refresh_from_db()
    assert (item.stock, item.wholesale_price) == (7, Decimal("120.00"))


@pytest.mark.parametrize(
    ("stock", "price", "field", "message"),
    [
        ("-1", "10", "stock", "El stock no puede ser negativo"),
        ("1.5", "10", "stock", "número entero, sin decimales"),
        ("diez", "10", "stock", "El stock tiene que ser un número entero"),
        ("", "10", "stock", "Ingresá el stock."),
        ("5", "12a", "wholesale_price", "El precio tiene letras"),
        ("5", "-3", "wholesale_price", "El precio no puede ser negativo"),
        ("5", "10,555", "wholesale_price", "más de 2 decimales"),
        ("5", "", "wholesale_price", "Ingresá el precio."),
    ],
)
def test_invalid_values_show_errors_and_save_nothing(
    admin_client: Client, make_item: MakeItem, stock: str, price: str, field: str, message: str
) -> None:
    item = make_item("A-1", stock=10, price="100.00")

    response = admin_client.post(item_url(item), {"stock": stock, "wholesale_price": price})

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert message in response.content.decode()
    item.refresh_from_db()
    assert (item.stock, item.wholesale_price) == (10, Decimal("100.00"))
    assert not item.changes.exists()


def test_both_fields_can_be_wrong_at_once(admin_client: Client, make_item: MakeItem) -> None:
    item = make_item("A-1")
    response = admin_client.post(item_url(item), {"stock": "-1", "wholesale_price": "x"})
    assert set(response.context["form"].errors) == {"stock", "wholesale_price"}


def test_other_stores_item_is_404(
    admin_client: Client, store: Store, other_store: Store, make_item: MakeItem
) -> None:
    theirs = make_item("T-1", stock=10, in_store=other_store)
    # Through our store's URL, and through theirs.
    mine_url = reverse("catalog:item", args=[store.slug, theirs.pk])
    assert admin_client.get(mine_url).status_code == 404
    assert admin_client.get(item_url(theirs)).status_code == 404
    assert admin_client.post(mine_url, {"stock": "0", "wholesale_price": "1"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.stock == 10


def test_thousands_point_in_a_price_gets_a_hint(admin_client: Client, make_item: MakeItem) -> None:
    item = make_item("A-1")
    response = admin_client.post(item_url(item), {"stock": "1", "wholesale_price": "18.250"})
    [error] = response.context["form"].errors["wholesale_price"]
    assert "más de 2 decimales" in error
    assert "Si son 18250 pesos, escribilo sin punto de miles" in error
