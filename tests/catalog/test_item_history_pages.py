"""The item page's history beyond one page: keyset pages, newest first, that follow
each other with nothing skipped or repeated, even among changes made at the same
instant, and survive a cursor that no longer names a change."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.test import Client
from django.urls import reverse

from catalog.history import PAGE_SIZE
from catalog.models import ChangeSource, Item, ItemChange
from stores.models import Store
from tests.catalog.conftest import MakeItem

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def item_url(item: Item) -> str:
    return reverse("catalog:item", args=[item.store.slug, item.pk])


def fill(item: Item, count: int, *, same_instant_every: int = 1) -> None:
    """`count` changes, new_stock 1..count in time order; groups of
    `same_instant_every` share one instant (an import writes all its rows at once)."""
    ItemChange.objects.bulk_create(
        ItemChange(
            store=item.store,
            item=item,
            at=START + timedelta(minutes=n // same_instant_every),
            source=ChangeSource.CSV,
            actor="importación «precios, marzo.csv»",
            old_stock=n,
            new_stock=n + 1,
            old_price=Decimal("1234.50"),
            new_price=Decimal("1250.00"),
        )
        for n in range(count)
    )


def walk(client: Client, item: Item, link: str) -> list[list[int]]:
    """Follow the pager's `link` text from the first page; the new_stock of each page."""
    pages = []
    response = client.get(item_url(item))
    while True:
        pages.append([c.new_stock for c in response.context["history"]])
        html = response.content.decode()
        found = re.search(rf'<a href="(\?[^"]+)">{re.escape(link)}</a>', html)
        if found is None:
            return pages
        response = client.get(item_url(item) + found.group(1).replace("&amp;", "&"))


def test_older_pages_follow_each_other_to_the_first_change_newest_first(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    item = make_item(" Ácido Cítrico + 10% ")
    fill(item, 2 * PAGE_SIZE + 7, same_instant_every=9)

    pages = walk(admin_client, item, "Más antiguos \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}")

    assert [len(page) for page in pages] == [PAGE_SIZE, PAGE_SIZE, 7]
    shown = [stock for page in pages for stock in page]
    assert shown == list(range(2 * PAGE_SIZE + 7, 0, -1))


def test_newer_link_goes_back_to_the_page_before(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    item = make_item("Ñandú #3, grande")
    fill(item, PAGE_SIZE + 20, same_instant_every=7)
    first = admin_client.get(item_url(item))
    second = admin_client.get(
        item_url(item), {"older_than": first.context["history_page"].older_than}
    )
    assert "\N{SINGLE LEFT-POINTING ANGLE QUOTATION MARK} Más recientes" in second.content.decode()

    back = admin_client.get(
        item_url(item), {"newer_than": second.context["history_page"].newer_than}
    )

    assert [c.pk for c in back.context["history"]] == [c.pk for c in first.context["history"]]
    # The newest page has nothing newer.
    assert back.context["history_page"].newer_than is None


def test_a_cursor_naming_no_change_of_this_item_shows_the_newest_page(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    item, other = make_item("A-1"), make_item("a-1 ")
    fill(item, PAGE_SIZE + 1)
    fill(other, 3)
    foreign = ItemChange.objects.filter(item=other).first()
    assert foreign is not None

    for cursor in (str(foreign.pk), "999999999", "abc", "²", "-5"):
        response = admin_client.get(item_url(item), {"older_than": cursor})
        assert response.status_code == 200
        assert response.context["history"][0].new_stock == PAGE_SIZE + 1


def test_the_last_page_says_how_long_history_is_kept(
    admin_client: Client, store: Store, make_item: MakeItem, settings
) -> None:
    settings.VXM_RETENTION_DAYS = 400
    item = make_item("A-1")
    fill(item, 3)
    html = admin_client.get(item_url(item)).content.decode()
    assert "El historial guarda los cambios de los últimos 400 días." in html
