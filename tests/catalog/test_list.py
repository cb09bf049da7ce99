"""The catalog list: search, stock filters, keyset paging and store isolation."""

import html
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.models import Item
from stores.models import Store
from tests.catalog.conftest import MakeItem


def list_url(store: Store) -> str:
    return reverse("catalog:list", args=[store.slug])


def listed(response: Any) -> list[str]:
    return [item.sku for item in response.context["items"]]


def bulk_items(store: Store, count: int, stock: int = 10) -> list[str]:
    skus = [f"SKU-{i:04d}" for i in range(count)]
    Item.objects.bulk_create(
        Item(
            store=store,
            sku=sku,
            sku_key=sku.lower(),
            name=f"Artículo {sku}",
            stock=stock,
            wholesale_price=Decimal("10.00"),
        )
        for sku in skus
    )
    return skus


def _link(response: Any, rel: str) -> str | None:
    """The pager's link as the browser follows it (relative to the page's URL)."""
    match = re.search(rf'href="([^"]*)" rel="{rel}"', response.content.decode())
    if match is None:
        return None
    return urljoin(response.wsgi_request.get_full_path(), html.unescape(match.group(1)))


def next_link(response: Any) -> str | None:
    return _link(response, "next")


def previous_link(response: Any) -> str | None:
    return _link(response, "prev")


def test_list_shows_sku_name_stock_price_and_update_time(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    item = make_item("ACE-0001", "Aceite de girasol 900 ml", stock=120, price="18250.00")
    Item.objects.filter(pk=item.pk).update(updated_at=datetime(2026, 3, 2, 15, 30, tzinfo=UTC))

    response = admin_client.get(list_url(store))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Aceite de girasol 900 ml" in page
    assert "$ 18.250,00" in page
    assert ">120<" in page.replace(" ", "")
    # Buenos Aires is UTC-3.
    assert "02/03/2026 12:30" in page
    assert reverse("catalog:item", args=[store.slug, item.pk]) in page
    assert reverse("catalog:import", args=[store.slug]) in page
    assert reverse("catalog:export", args=[store.slug]) in page


def test_list_is_sorted_by_sku(admin_client: Client, store: Store, make_item: MakeItem) -> None:
    for sku in ["C-3", "A-1", "B-2"]:
        make_item(sku)
    assert listed(admin_client.get(list_url(store))) == ["A-1", "B-2", "C-3"]


def test_search_matches_sku_or_name_ignoring_case(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    make_item("ACE-0001", "Aceite de girasol")
    make_item("TOR-0102", "Tornillo hexagonal 1/2")
    make_item("HAR-0003", "Harina 000")

    assert listed(admin_client.get(list_url(store), {"q": "tor-01"})) == ["TOR-0102"]
    assert listed(admin_client.get(list_url(store), {"q": "GIRASOL"})) == ["ACE-0001"]
    # Every word must match, in the SKU or in the name.
    assert listed(admin_client.get(list_url(store), {"q": "tornillo 1/2"})) == ["TOR-0102"]
    assert listed(admin_client.get(list_url(store), {"q": "tornillo 3/4"})) == []


def test_search_without_results_says_so(admin_client: Client, store: Store) -> None:
    response = admin_client.get(list_url(store), {"q": "inexistente"})
    assert "No encontramos productos con «inexistente»" in response.content.decode()


def test_empty_catalog_invites_to_import(admin_client: Client, store: Store) -> None:
    response = admin_client.get(list_url(store))
    assert "Todavía no hay productos" in response.content.decode()


def test_stock_filters(admin_client: Client, store: Store, make_item: MakeItem) -> None:
    for sku, stock in [("S0", 0), ("S1", 1), ("S5", 5), ("S6", 6), ("S99", 99)]:
        make_item(sku, stock=stock)

    assert listed(admin_client.get(list_url(store), {"stock": "out"})) == ["S0"]
    assert listed(admin_client.get(list_url(store), {"stock": "low"})) == ["S1", "S5"]
    assert len(listed(admin_client.get(list_url(store)))) == 5


def test_an_unknown_filter_keeps_the_search(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    make_item("A", "Yerba")
    make_item("B", "Azúcar")
    assert listed(admin_client.get(list_url(store), {"q": "yerba", "stock": "raro"})) == ["A"]


def test_filter_and_search_combine(admin_client: Client, store: Store, make_item: MakeItem) -> None:
    make_item("A", "Yerba 1 kg", stock=0)
    make_item("B", "Yerba 500 g", stock=20)
    make_item("C", "Azúcar", stock=0)
    assert listed(admin_client.get(list_url(store), {"q": "yerba", "stock": "out"})) == ["A"]


def test_keyset_pages_cover_every_item_once_in_both_directions(
    admin_client: Client, store: Store
) -> None:
    skus = bulk_items(store, 123)

    pages = [admin_client.get(list_url(store))]
    while link := next_link(pages[-1]):
        assert "after=" in link
        pages.append(admin_client.get(link))
    seen = [sku for page in pages for sku in listed(page)]

    assert [len(listed(p)) for p in pages] == [50, 50, 23]
    assert seen == skus  # sorted, nothing missing, nothing repeated
    assert previous_link(pages[0]) is None

    backwards = [pages[-1]]
    while link := previous_link(backwards[-1]):
        assert "before=" in link
        backwards.append(admin_client.get(link))
    assert [listed(p) for p in backwards[1:]] == [listed(p) for p in reversed(pages[:-1])]


def test_page_two_continues_after_page_one_when_items_are_added_meanwhile(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    skus = bulk_items(store, 60)
    first = admin_client.get(list_url(store))
    # Someone imports items that sort before the cursor while the admin reads page 1.
    make_item("AAA-NEW")
    second = admin_client.get(next_link(first) or "")

    assert listed(first) + listed(second) == skus


def test_paging_keeps_the_search_and_filter(admin_client: Client, store: Store) -> None:
    bulk_items(store, 70, stock=0)
    Item.objects.filter(store=store, sku="SKU-0003").update(stock=50)

    first = admin_client.get(list_url(store), {"q": "sku", "stock": "out"})
    link = next_link(first) or ""
    second = admin_client.get(link)

    assert "q=sku" in link and "stock=out" in link
    assert len(listed(first)) == 50 and len(listed(second)) == 19
    assert "SKU-0003" not in listed(first) + listed(second)


def test_paging_past_the_end_offers_the_first_page(admin_client: Client, store: Store) -> None:
    bulk_items(store, 3)
    response = admin_client.get(list_url(store), {"after": "ZZZ"})
    assert listed(response) == []
    assert "Volver a la primera página" in response.content.decode()


def test_list_count_is_capped_and_no_query_uses_offset(admin_client: Client, store: Store) -> None:
    bulk_items(store, 1005)

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(list_url(store), {"after": "SKU-0500"})

    assert "Más de 1.000 productos" in response.content.decode()
    sqls = [q["sql"].upper() for q in queries.captured_queries]
    assert not any("OFFSET" in sql for sql in sqls)
    assert all("LIMIT" in sql for sql in sqls if "COUNT(" in sql)


def test_small_catalog_shows_its_exact_count(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    make_item("A")
    make_item("B")
    assert "2 productos" in admin_client.get(list_url(store)).content.decode()


def test_other_stores_items_are_never_listed(
    admin_client: Client, store: Store, other_store: Store, make_item: MakeItem
) -> None:
    make_item("MINE-1", "Yerba propia")
    make_item("THEIRS-1", "Yerba ajena", in_store=other_store)

    response = admin_client.get(list_url(store), {"q": "yerba"})

    assert listed(response) == ["MINE-1"]
    assert "Yerba ajena" not in response.content.decode()


def test_other_store_list_is_404(admin_client: Client, other_store: Store) -> None:
    assert admin_client.get(list_url(other_store)).status_code == 404


@pytest.mark.parametrize("name", ["list", "import", "export"])
def test_catalog_pages_need_login(client: Client, store: Store, name: str) -> None:
    response = client.get(reverse(f"catalog:{name}", args=[store.slug]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
