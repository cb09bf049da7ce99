"""A run's page as the store admin reads it: one count per kind of problem, the
same in the figures and on the filter chips, and every changed SKU a link to its
item."""

import re
from typing import Any

import pytest
from django.urls import reverse

from catalog.models import Item
from erp.models import IssueKind
from stores.models import Store
from tests.erp.sync_helpers import connect, make_items, sync
from tests.erp.test_pages import erp_item, text, url


@pytest.fixture
def ambiguous_run(store: Store, standin: Any) -> Any:
    """Three ERP codes that are two store SKUs each (letter case only), one code
    with no product, and one item that changes."""
    connect(store, standin)
    make_items(
        store,
        [
            ("AMB-1", 1, "10.00"),
            ("amb-1", 1, "10.00"),
            ("Ñandú-2", 1, "10.00"),
            ("ñandú-2", 1, "10.00"),
            ("C+3%", 1, "10.00"),
            ("c+3%", 1, "10.00"),
            ("ACE 1,5 L #7", 4, "1234.56"),
        ],
    )
    standin.load(
        [
            erp_item(standin, "AMB-1", "5.000", "10.00"),
            erp_item(standin, "ÑANDÚ-2", "5.000", "10.00"),
            erp_item(standin, "c+3%", "5.000", "10.00"),
            erp_item(standin, "GHOST-9", "5.000", "5.00"),
            erp_item(standin, " ace 1,5 l #7", "9.000", "1500.00"),
        ]
    )
    run = sync(store)
    assert (run.ambiguous, run.unmatched, run.stock_changed) == (3, 1, 1), run.error_message
    return run


def chips(page: str) -> dict[str, int]:
    """The filter chips: "Códigos ambiguos (3)" → {"Códigos ambiguos": 3}."""
    nav = page[page.index("Mostrar por tipo") :]
    return {
        label.strip(): int(count)
        for label, count in re.findall(
            r'class="chip"[^>]*>([^<]+)<span class="count">\((\d+)\)', nav
        )
    }


def test_ambiguous_codes_are_counted_once_and_the_same_everywhere(
    admin_client, store, ambiguous_run
):
    run = ambiguous_run
    response = admin_client.get(url("run", store, run.pk))
    page = text(response)
    assert "3 Códigos ambiguos" in page  # the figure
    assert "1 Códigos sin producto en la tienda" in page
    shown = chips(response.content.decode())
    assert shown["Códigos ambiguos"] == 3  # its chip: the same count, the same label
    assert shown["Códigos sin producto en la tienda"] == 1
    assert shown["Todos"] == 4
    # Why the list holds more rows than the count says.
    assert "3 códigos, 6 filas" in page

    filtered = admin_client.get(url("run", store, run.pk), {"kind": IssueKind.AMBIGUOUS})
    rows = re.findall(r"<tr>\s*<td[^>]*>SKU ambiguo</td>", filtered.content.decode())
    assert len(rows) == 6  # one row per store SKU, under the chip that says 3
    assert "Descargar CSV (Códigos ambiguos)" in text(filtered)

    # The integrations page's summary counts the same thing.
    status = text(admin_client.get(url("integrations", store)))
    assert "3 códigos ambiguos" in status


def test_a_run_without_ambiguous_codes_says_nothing_about_rows(admin_client, store, standin):
    connect(store, standin)
    make_items(store, [("UNO-1", 1, "1.00")])
    standin.load([erp_item(standin, "UNO-1", "2.000", "1.00")])
    run = sync(store)
    page = text(admin_client.get(url("run", store, run.pk)))
    assert "filas" not in page
    assert chips(admin_client.get(url("run", store, run.pk)).content.decode())["Todos"] == 0


def test_each_changed_sku_links_to_its_item_in_this_store(admin_client, store, ambiguous_run):
    item = Item.objects.get(store=store, sku="ACE 1,5 L #7")
    response = admin_client.get(url("run", store, ambiguous_run.pk))
    link = reverse("catalog:item", args=[store.slug, item.pk])
    assert f'<a href="{link}">ACE 1,5 L #7</a>' in response.content.decode()
    item_page = text(admin_client.get(link))
    assert "ACE 1,5 L #7" in item_page and "4 → 9" in item_page  # its history
