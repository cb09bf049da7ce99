"""Locking an item against the ERP from its page and from `vxm catalog lock|unlock`,
and the catalog list's filter of locked items. What an update does with a locked
item: tests/erp/test_locked_items.py."""

import io
import re
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from catalog.models import ChangeSource, Item, ItemChange
from stores.models import Store
from tests.catalog.conftest import MakeItem
from tests.catalog.test_list import bulk_items, list_url, listed, next_link, previous_link
from tests.erp.sync_helpers import connect
from tests.erp.test_pages import text


def lock_url(item: Item) -> str:
    return reverse("catalog:item_lock", args=[item.store.slug, item.pk])


def item_url(item: Item) -> str:
    return reverse("catalog:item", args=[item.store.slug, item.pk])


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def locked_skus(store: Store) -> set[str]:
    return set(Item.objects.filter(store=store, erp_locked=True).values_list("sku", flat=True))


# -- the item page -----------------------------------------------------------------


def test_lock_and_unlock_from_the_item_page_say_who_when_and_what_it_means(
    admin_client: Client, store: Store, standin: Any, make_item: MakeItem
) -> None:
    connect(store, standin)
    item = make_item("Ñoquis 500 g + 10%", "Ñoquis de papa", stock=7, price="1234.56")

    page = text(admin_client.get(item_url(item)))
    assert "El stock y el precio de este producto los maneja NonSistemas." in page
    assert "Bloquear frente a NonSistemas" in page

    response = admin_client.post(lock_url(item), {"locked": "1"}, follow=True)
    assert messages_of(response) == [
        "Bloqueado: NonSistemas no cambia el stock ni el precio de «Ñoquis 500 g + 10%» "
        "hasta que lo desbloquees."
    ]
    item.refresh_from_db()
    assert item.erp_locked
    page = text(response)
    assert (
        "NonSistemas no cambia el stock ni el precio de este producto hasta que lo desbloquees"
        in page
    )
    assert re.search(r"Lo bloqueó admin@sur\.test el \d\d/\d\d/\d{4} a las \d\d:\d\d\.", page)
    # The lock is against the ERP only, and the page says so.
    assert "una importación CSV o un cambio acá sí lo cambian" in page
    assert "los maneja NonSistemas" not in page
    # The history says who and when, and what it means.
    assert "Bloqueo frente a NonSistemas admin@sur.test Desde acá, NonSistemas no cambia" in page
    [row] = ItemChange.objects.filter(item=item)
    assert (row.source, row.actor, row.user_id, row.new_stock, row.new_price) == (
        ChangeSource.LOCK,
        "admin@sur.test",
        response.wsgi_request.user.pk,
        None,
        None,
    )

    # Sent twice (a double click, the back button): still locked, one history row.
    response = admin_client.post(lock_url(item), {"locked": "1"}, follow=True)
    assert messages_of(response) == ["«Ñoquis 500 g + 10%» ya estaba bloqueado."]
    assert ItemChange.objects.filter(item=item).count() == 1

    response = admin_client.post(lock_url(item), {"locked": "0"}, follow=True)
    assert messages_of(response) == [
        "Desbloqueado: la próxima actualización completa le trae el stock y el precio de "
        "NonSistemas."
    ]
    item.refresh_from_db()
    assert not item.erp_locked
    assert "los maneja NonSistemas" in text(response)
    assert list(ItemChange.objects.filter(item=item).values_list("source", flat=True)) == [
        ChangeSource.UNLOCK,
        ChangeSource.LOCK,
    ]


def test_a_manual_edit_still_changes_a_locked_item_without_the_overwrite_warning(
    admin_client: Client, store: Store, standin: Any, make_item: MakeItem
) -> None:
    connect(store, standin)
    item = make_item("TOR-1/2", stock=10, price="100.00")
    admin_client.post(lock_url(item), {"locked": "1"}, follow=True)  # its message shown
    response = admin_client.post(
        item_url(item), {"stock": "12", "wholesale_price": "1.234,56"}, follow=True
    )
    assert messages_of(response) == ["Guardado: stock 10 → 12 y precio $ 100,00 → $ 1.234,56."]
    item.refresh_from_db()
    assert (item.stock, item.wholesale_price, item.erp_locked) == (12, Decimal("1234.56"), True)


def test_the_lock_is_a_post_with_csrf_of_the_users_own_store(
    store: Store, other_store: Store, admin_user: Any, make_item: MakeItem
) -> None:
    item = make_item("ACE-1")
    foreign = make_item("ACE-1", in_store=other_store)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    assert client.get(lock_url(item)).status_code == 405
    assert client.post(lock_url(item), {"locked": "1"}).status_code == 403  # no CSRF token
    token = client.get(item_url(item)).cookies["csrftoken"].value
    foreign_url = lock_url(foreign)
    assert client.post(foreign_url, {"locked": "1"}).status_code == 403
    response = client.post(foreign_url, {"locked": "1", "csrfmiddlewaretoken": token})
    assert response.status_code == 404
    assert locked_skus(other_store) == set()

    response = client.post(lock_url(item), {"locked": "sí", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and locked_skus(store) == set()
    response = client.post(
        lock_url(item), {"locked": "1", "csrfmiddlewaretoken": token}, follow=True
    )
    assert locked_skus(store) == {"ACE-1"}


def test_without_an_erp_an_unlocked_item_shows_no_lock_and_a_locked_one_can_be_unlocked(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    item = make_item("SIN-ERP")
    assert "Bloquear" not in text(admin_client.get(item_url(item)))
    call_command("catalog", "lock", "sur", "SIN-ERP", stdout=io.StringIO())
    page = text(admin_client.get(item_url(item)))
    assert "El ERP no cambia el stock ni el precio de este producto" in page
    admin_client.post(lock_url(item), {"locked": "0"})
    assert locked_skus(store) == set()


# -- the command line --------------------------------------------------------------


def run_cli(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("catalog", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_cli_locks_and_unlocks_by_the_sku_rule(store: Store, make_item: MakeItem) -> None:
    make_item("Ñoquis 500 g")
    make_item("ACE-0001")
    make_item("tor-1/2 #3")

    out, _ = run_cli("lock", "sur", " ñoquis 500 G ", "ACE-0001", "TOR-1/2 #3")
    assert "«Ñoquis 500 g»: bloqueado." in out
    assert "«tor-1/2 #3»: bloqueado." in out
    assert "NonSistemas no cambia su stock ni su precio hasta que los desbloquees" in out
    assert locked_skus(store) == {"Ñoquis 500 g", "ACE-0001", "tor-1/2 #3"}
    [change] = ItemChange.objects.filter(item__sku="ACE-0001")
    assert change.source == ChangeSource.LOCK and change.actor.startswith("línea de comandos (")

    out, _ = run_cli("lock", "sur", "ace-0001")
    assert out.startswith("«ACE-0001»: ya estaba bloqueado.")

    out, _ = run_cli("unlock", "sur", "ACE-0001", "tor-1/2 #3")
    assert "«ACE-0001»: desbloqueado." in out
    assert "vxm erp sync sur --full" in out
    assert locked_skus(store) == {"Ñoquis 500 g"}


def test_cli_with_an_unknown_or_ambiguous_sku_locks_nothing(
    store: Store, make_item: MakeItem
) -> None:
    make_item("ACE-0001")
    make_item("AMB-1")
    Item.objects.bulk_create(
        [Item(store=store, sku="amb-1", name="Otro", stock=1, wholesale_price=Decimal("1"))]
    )
    err = io.StringIO()
    with pytest.raises(CommandError, match="No se bloqueó nada"):
        call_command(
            "catalog",
            "lock",
            "sur",
            "ACE-0001",
            "NO-EXISTE",
            "Amb-1",
            stdout=io.StringIO(),
            stderr=err,
        )
    assert "«NO-EXISTE»: no hay ningún producto con ese SKU en «sur»." in err.getvalue()
    assert "«Amb-1»: varios productos tienen ese SKU" in err.getvalue()
    assert "«AMB-1», «amb-1»" in err.getvalue()
    assert locked_skus(store) == set() and not ItemChange.objects.exists()

    # Written exactly, one of the ambiguous SKUs is that item.
    run_cli("lock", "sur", "amb-1")
    assert locked_skus(store) == {"amb-1"}

    with pytest.raises(CommandError, match="No existe la tienda «nadie»"):
        run_cli("unlock", "nadie", "ACE-0001")


def test_cli_needs_at_least_one_sku(store: Store) -> None:
    with pytest.raises(CommandError, match="SKU"):
        run_cli("lock", "sur")


# -- the list ----------------------------------------------------------------------


def test_the_list_filters_locked_items_pages_them_by_key_and_shows_a_badge(
    admin_client: Client, store: Store
) -> None:
    skus = bulk_items(store, 130)
    # Every third item locked, interleaved with unlocked ones: 44 locked, so with a
    # search word too and a page of 50 there is more than a page only unfiltered.
    locked = skus[::3]
    Item.objects.filter(store=store, sku__in=locked).update(erp_locked=True)
    bulk_items_extra = [f"sku-{i:04d}b" for i in range(0, 30, 3)]
    Item.objects.bulk_create(
        Item(
            store=store,
            sku=sku,
            name="Extra",
            stock=1,
            wholesale_price=Decimal("1"),
            erp_locked=True,
        )
        for sku in bulk_items_extra
    )
    expected = sorted([*locked, *bulk_items_extra], key=lambda s: (s.casefold(), s))

    response = admin_client.get(list_url(store), {"stock": "locked"})
    seen = listed(response)
    assert len(seen) == 50
    assert "54 productos coinciden" in text(response)
    assert len(re.findall(r"\bBloqueado\b", text(response))) == 50
    link = next_link(response)
    assert link is not None
    second = admin_client.get(link)
    seen += listed(second)
    assert seen == expected and next_link(second) is None
    back = previous_link(second)
    assert back is not None and listed(admin_client.get(back)) == expected[:50]

    # The unfiltered list shows the badge only on locked items.
    first = text(admin_client.get(list_url(store)))
    assert "SKU-0000 Bloqueado Artículo SKU-0000" in first
    assert "SKU-0001 Artículo SKU-0001" in first

    response = admin_client.get(list_url(store), {"stock": "locked", "q": "no-hay"})
    assert "No encontramos productos con «no-hay» bloqueados frente al ERP." in text(response)
