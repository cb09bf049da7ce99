"""CatalogWriter, the bulk writer shared by the CSV import and the ERP updates."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction

from catalog.models import ChangeSource, Item, ItemChange
from catalog.writes import CatalogWriter
from stores.models import Store
from tests.catalog.conftest import MakeItem

AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def writer(store: Store) -> CatalogWriter:
    return CatalogWriter(store.pk, at=AT, source=ChangeSource.CSV, actor="prueba")


def test_create_items_returns_the_new_ids_by_sku(store: Store, make_item: MakeItem) -> None:
    make_item("OLD-1")
    with transaction.atomic():
        ids = writer(store).create_items(
            [("NEW-1", "Uno", 3, Decimal("10.50")), (" Ñandú-2 ", "Azúcar Dos", 0, Decimal("0"))]
        )

    # Surrounding whitespace is never part of a SKU.
    assert set(ids) == {"NEW-1", "Ñandú-2"}
    created = {i.sku: i for i in Item.objects.filter(pk__in=ids.values())}
    assert (created["NEW-1"].name, created["NEW-1"].stock) == ("Uno", 3)
    assert created["NEW-1"].wholesale_price == Decimal("10.50")
    assert created["Ñandú-2"].sku_key == "ñandú-2"
    assert created["Ñandú-2"].search_text == "nandu-2\nazucar dos"
    assert created["NEW-1"].created_at == created["NEW-1"].updated_at == AT
    assert writer(store).create_items([]) == {}


def test_updates_change_only_this_stores_items(
    store: Store, other_store: Store, make_item: MakeItem
) -> None:
    mine = make_item("A-1", "Viejo", stock=1, price="1.00")
    theirs = make_item("B-1", "Ajeno", stock=2, price="2.00", in_store=other_store)

    with transaction.atomic():
        writer(store).update_items(
            [
                (mine.pk, "A-1", "Nuevo Ñandú", 5, Decimal("5.25")),
                (theirs.pk, "B-1", "Robado", 9, Decimal("9.00")),
            ]
        )
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.name, mine.stock, mine.wholesale_price, mine.updated_at) == (
        "Nuevo Ñandú",
        5,
        Decimal("5.25"),
        AT,
    )
    # The search finds it by its new name.
    assert mine.search_text == "a-1\nnuevo nandu"
    assert (theirs.name, theirs.stock, theirs.wholesale_price) == ("Ajeno", 2, Decimal("2.00"))

    with transaction.atomic():
        writer(store).set_stock_and_price(
            [(mine.pk, 7, Decimal("7.00")), (theirs.pk, 8, Decimal("8.00"))]
        )
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.name, mine.stock, mine.wholesale_price) == ("Nuevo Ñandú", 7, Decimal("7.00"))
    assert (theirs.stock, theirs.wholesale_price) == (2, Decimal("2.00"))


def test_history_rows_carry_the_writers_stamp(
    store: Store, make_item: MakeItem, admin_user: object
) -> None:
    item = make_item("A-1")
    user_id = getattr(admin_user, "pk", None)
    with transaction.atomic():
        CatalogWriter(
            store.pk, at=AT, source=ChangeSource.CSV, actor="admin", user_id=user_id
        ).add_history([(item.pk, 1, 2, None, None), (item.pk, None, None, None, Decimal("3"))])

    rows = list(
        ItemChange.objects.filter(item=item)
        .order_by("id")
        .values_list("at", "source", "actor", "user_id", "run_id", "old_stock", "new_price")
    )
    assert rows == [
        (AT, "csv", "admin", user_id, None, 1, None),
        (AT, "csv", "admin", user_id, None, None, Decimal("3.00")),
    ]
