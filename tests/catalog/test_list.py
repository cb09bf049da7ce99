"""The catalog list: search, stock filters, keyset paging and store isolation."""

import html
import re
import unicodedata
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
    last = Item.objects.get(store=store, sku="SKU-0002")
    response = admin_client.get(list_url(store), {"after": last.pk})
    assert listed(response) == []
    assert "Volver a la primera página" in response.content.decode()


def test_list_count_is_capped_and_no_query_uses_offset(admin_client: Client, store: Store) -> None:
    bulk_items(store, 1005)

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(
            list_url(store), {"after": Item.objects.get(store=store, sku="SKU-0500").pk}
        )

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


# ----- paging over real-store SKUs, and accent-insensitive search (issue 9) -----------

# SKUs as stores write them: spaces inside, `+ % # ,`, quotes, accents, mixed case,
# some differing only in case (one key: the id orders them).
AWKWARD_SKUS = [
    "GAL-0153",
    "gal-0154",
    "Gal-0155",
    "ACE 0013",
    "ace+0014",
    "ACE%0015",
    "ACE#0016",
    "ACE,0017",
    'ACE"0018',
    "Ñandú-1",
    "ñandú-2",
    "Azúcar-1",
    "AZUCAR-2",
    "Ábaco",
    "zz-último",
    "100%",
    "+1",
    "a b c",
    "ÉCLAIR",
    "éclair",
    # More items with one key than a page holds: the id orders them across pages.
    *("Mix-1", "MIX-1", "mix-1", "mIx-1", "miX-1", "MiX-1", "mIX-1", "MIx-1"),
]


def awkward_catalog(store: Store) -> list[Item]:
    """60+ items whose SKUs hold everything that broke the old paging, plus a SKU
    left with spaces by migration 0004 next to the same SKU without them."""
    items = [
        Item(
            store=store,
            sku=f"{sku}{suffix}",
            name=f"{'Azúcar común' if n % 3 == 0 else 'Yerba'} {n}",
            stock=n % 7,
            wholesale_price=Decimal("1.00"),
        )
        for n, (sku, suffix) in enumerate(
            (sku, suffix) for suffix in ("", "/b", "/C") for sku in AWKWARD_SKUS
        )
    ]
    created = Item.objects.bulk_create(items)
    spaced = Item.objects.create(
        store=store, sku="tmp", name="Galletitas viejas", stock=3, wholesale_price=1
    )
    Item.objects.filter(pk=spaced.pk).update(sku=" GAL-0153 ", sku_key="gal-0153")
    return [*created, spaced]


def walk(client: Client, first_url: str, params: dict[str, str]) -> tuple[list[Any], list[Any]]:
    """Every page from the first via "Siguientes", then back via "Anteriores"."""
    forward = [client.get(first_url, params)]
    while link := next_link(forward[-1]):
        forward.append(client.get(link))
        assert len(forward) < 100
    backward = [forward[-1]]
    while link := previous_link(backward[-1]):
        backward.append(client.get(link))
        assert len(backward) < 100
    return forward, backward


@pytest.mark.parametrize(
    "params",
    [{}, {"q": "azucar"}, {"stock": "low"}, {"q": "ACE"}],
    ids=["all", "search", "low-stock", "search-sku"],
)
def test_paging_reaches_every_item_exactly_once_whatever_its_sku_holds(
    admin_client: Client, store: Store, monkeypatch: pytest.MonkeyPatch, params: dict[str, str]
) -> None:
    monkeypatch.setattr("catalog.views.PAGE_SIZE", 7)
    awkward_catalog(store)
    expected = list(
        Item.objects.filter(pk__in=[i.pk for i in _filtered_for_test(store, params)]).order_by(
            "sku_key", "id"
        )
    )
    assert len(expected) > 14  # several pages

    forward, backward = walk(admin_client, list_url(store), params)

    seen = [item.pk for page in forward for item in page.context["items"]]
    assert seen == [item.pk for item in expected]  # all, once each, in order
    assert all(len(page.context["items"]) == 7 for page in forward[:-1])
    # Back from the last page: the same pages, in reverse.
    assert [[i.pk for i in p.context["items"]] for p in backward] == [
        [i.pk for i in p.context["items"]] for p in reversed(forward)
    ]
    assert all(page.status_code == 200 for page in forward + backward)


def _plain(text: str) -> str:
    """Lower case without accents, written independently of catalog.models."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _filtered_for_test(store: Store, params: dict[str, str]) -> list[Item]:
    """What the list should show for `params`, computed without the view's query."""
    items = list(Item.objects.filter(store=store))
    if params.get("stock") == "low":
        items = [i for i in items if 1 <= i.stock <= 5]
    if q := params.get("q"):
        items = [i for i in items if _plain(q) in _plain(i.sku) or _plain(q) in _plain(i.name)]
    return items


def test_the_list_looks_sorted_by_sku_ignoring_case_and_spaces(
    admin_client: Client, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("catalog.views.PAGE_SIZE", 500)
    awkward_catalog(store)

    skus = listed(admin_client.get(list_url(store)))

    # The SKU left with spaces sits beside its twin, not first.
    at = skus.index(" GAL-0153 ")
    assert skus[at - 1 : at + 2] == ["GAL-0153", " GAL-0153 ", "GAL-0153/b"]
    # Letter case is ignored: SKUs that differ only in case sit together.
    assert skus.index("ÉCLAIR") + 1 == skus.index("éclair")
    assert skus.index("GAL-0153/C") < skus.index("gal-0154") < skus.index("Gal-0155")
    # Otherwise by character (the test databases compare by code point, like SQLite).
    ace = ["ACE 0013", 'ACE"0018', "ACE#0016", "ACE%0015", "ace+0014", "ACE,0017"]
    assert [sku for sku in skus if sku in ace] == ace


def test_a_cursor_from_another_store_or_malformed_shows_the_first_page(
    admin_client: Client, store: Store, other_store: Store, make_item: MakeItem
) -> None:
    bulk_items(store, 60)
    theirs = make_item("ZZZ-THEIRS", in_store=other_store)
    first = listed(admin_client.get(list_url(store)))

    for cursor in [str(theirs.pk), "ACE-0013", "+GAL-0153+", "-1", "9" * 30]:
        for name in ("after", "before"):
            response = admin_client.get(list_url(store), {name: cursor})
            assert response.status_code == 200
            assert listed(response) == first, (name, cursor)


def test_search_ignores_accents_and_case(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    make_item("AZU-1", "Azúcar común 1 kg")
    make_item("AZU-2", "AZÚCAR impalpable")
    make_item("ÑAN-1", "Galletitas Ñandú")
    make_item("Café-1", "Molido")
    make_item("HAR-1", "Harina 000")

    found = {
        q: sorted(listed(admin_client.get(list_url(store), {"q": q})))
        for q in ["azucar", "AZUCAR", "azúcar", "Azúcar", "AZÚCAR"]
    }
    assert set(map(tuple, found.values())) == {("AZU-1", "AZU-2")}
    # By SKU too, and every word must match.
    assert listed(admin_client.get(list_url(store), {"q": "nan-1"})) == ["ÑAN-1"]
    assert listed(admin_client.get(list_url(store), {"q": "ñandu galletitas"})) == ["ÑAN-1"]
    assert listed(admin_client.get(list_url(store), {"q": "cafe"})) == ["Café-1"]
    assert listed(admin_client.get(list_url(store), {"q": "azucar harina"})) == []


def test_search_words_are_literal_and_do_not_span_sku_and_name(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    make_item("100%", "Jugo")
    make_item("ACE_1", "Aceite")
    make_item("ACE", "ite")
    make_item("X-1", "Otro")

    assert listed(admin_client.get(list_url(store), {"q": "%"})) == ["100%"]
    assert listed(admin_client.get(list_url(store), {"q": "_"})) == ["ACE_1"]
    # "ace" + "ite" are the SKU and the name of one item: not a match for "aceite".
    assert listed(admin_client.get(list_url(store), {"q": "aceite"})) == ["ACE_1"]


def test_an_item_is_found_by_the_name_a_csv_import_gave_it(
    admin_client: Client, store: Store, make_item: MakeItem
) -> None:
    import io as _io

    from catalog.csv_import import import_csv

    make_item("A-1", "Viejo nombre")
    import_csv(
        store, _io.BytesIO("sku,name,stock,wholesale_price\nA-1,Azúcar,1,1\n".encode()), actor="t"
    )
    assert listed(admin_client.get(list_url(store), {"q": "azucar"})) == ["A-1"]
    assert listed(admin_client.get(list_url(store), {"q": "viejo"})) == []
