"""Undo an update (issue #11, item 3) in a real browser.

A store admin opens an update's page, opens "Deshacer esta actualización", reads
what it will do, confirms; the undo is queued and the task worker (`vxm
db_worker`, its own process, as in production) runs it; the undo's page, which
follows it by polling, reloads and says which update it undid, what it put back
and what it left alone (an item the admin edited by hand after the update). The
update's page then says it was undone; the item page's history shows the undo.
Screenshots at 1280 and 390 px wide.
"""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from catalog.models import Item
from erp.models import Run, RunMode, RunStatus
from stores.models import Store
from tests.browser.conftest import log_in
from tests.browser.test_erp_update import changes_shown
from tests.browser.test_phone_layout import assert_fits
from tests.erp.sync_helpers import connect, make_items, sync

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS = [
    ("ACE-0001 #2", "Aceite de girasol 1,5 l x 12", 5, "100.00", "1180.50"),
    ("Azúcar 1 kg + 10%", "Azúcar Ledesma 1 kg x 10", 40, "950.00", "1020.00"),
    ("yerba-500, suave", "Yerba Playadito 500 g", 12, "1300.00", "1450.00"),
]


def test_admin_undoes_an_update_and_sees_what_came_back_and_what_was_left(
    page: Any,
    live_server: Any,
    admin_user: Any,
    store: Store,
    standin: Any,
    run_worker: Callable[[], str],
    screenshot: Callable[[str], Path],
) -> None:
    from playwright.sync_api import expect

    connect(store, standin)
    make_items(
        store,
        [(sku, stock, price) for sku, _, stock, price, _ in ROWS],
        names={sku: name for sku, name, *_ in ROWS},
    )
    yesterday = (standin.now() - timedelta(days=1)).isoformat(timespec="seconds")
    standin.load(
        [
            {
                "codigo": f" {sku.upper()} ",
                "descripcion": name,
                "stock": f"{stock}.000",
                "precio_mayorista": new_price,
                "moneda": "ARS",
                "activo": True,
                "modificado": yesterday,
            }
            for sku, name, stock, _, new_price in ROWS
        ]
    )
    update = sync(store, full=True)
    assert update.price_changed == 3
    # Edited by hand after the update: the undo must leave it alone.
    Item.objects.filter(store=store, sku="yerba-500, suave").update(
        wholesale_price=Decimal("1499.99")
    )

    log_in(page, live_server.url, admin_user.email)
    page.goto(live_server.url + reverse("erp:run", args=[store.slug, update.pk]))
    expect(page.get_by_role("heading", name=f"Actualización #{update.pk}")).to_be_visible()
    disclosure = page.locator("details#deshacer")
    disclosure.get_by_text("Deshacer esta actualización").click()
    expect(disclosure).to_contain_text(
        "Se van a volver a poner los valores de antes en 3 productos"
    )
    expect(disclosure).to_contain_text("Deshacer no cambia nada en NonSistemas")
    screenshot("undo-01-confirm-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    assert_fits(page, "an update's page, its undo opened")
    screenshot("undo-01-confirm-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    disclosure.get_by_role("button", name=f"Sí, deshacer la actualización #{update.pk}").click()
    expect(page.locator(".messages .success")).to_contain_text(
        f"Deshaciendo la actualización #{update.pk}"
    )
    undo_run = Run.objects.get(mode=RunMode.UNDO)
    expect(page.get_by_role("heading", name=f"Actualización #{undo_run.pk}")).to_be_visible()
    expect(page.locator("#erp-status .badge")).to_have_text("En cola")

    run_worker()
    # The page follows the undo and reloads once it has finished.
    expect(page.locator("h1 .badge")).to_have_text("Completada con avisos")
    box = page.locator("#deshacer")
    expect(box).to_contain_text(f"Deshace la actualización #{update.pk}")
    expect(box).to_contain_text(
        "Volvió a poner los valores de antes en 2 productos (stocks: 0, precios: 2)."
    )
    expect(box).to_contain_text(
        "1 producto cambió después de la actualización y se dejó como está."
    )
    assert changes_shown(page) == [
        (
            "ACE-0001 #2",
            "Aceite de girasol 1,5 l x 12",
            None,
            (Decimal("1180.50"), Decimal("100.00")),
        ),
        (
            "Azúcar 1 kg + 10%",
            "Azúcar Ledesma 1 kg x 10",
            None,
            (Decimal("1020.00"), Decimal("950.00")),
        ),
    ]
    box.get_by_role("link", name="Ver cuáles").click()
    expect(page.locator("#no-aplicados ~ .table-wrap table").first).to_contain_text(
        "Cambió después de la actualización: ahora tiene stock 12 / precio $ 1.499,99; "
        "se dejó como está."
    )
    screenshot("undo-02-undo-run-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    assert_fits(page, "the undo's page")
    screenshot("undo-02-undo-run-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.locator("#deshacer").get_by_role("link", name=f"#{update.pk}").click()
    expect(page.get_by_role("heading", name=f"Actualización #{update.pk}")).to_be_visible()
    expect(page.locator("#deshacer")).to_have_text(f"Deshecha por #{undo_run.pk}.")
    expect(page.locator("details#deshacer")).to_have_count(0)
    screenshot("undo-03-undone-run-1280")

    ace = Item.objects.get(store=store, sku="ACE-0001 #2")
    page.goto(live_server.url + reverse("catalog:item", args=[store.slug, ace.pk]))
    history = page.get_by_role("table").last
    expect(history.locator("tbody tr").first).to_contain_text(
        f"Deshacer actualización #{update.pk}"
    )
    screenshot("undo-04-item-history-1280")
    assert Run.objects.get(pk=undo_run.pk).status == RunStatus.WARNINGS
    assert Item.objects.get(pk=ace.pk).wholesale_price == Decimal("100.00")
