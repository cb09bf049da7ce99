"""A store admin pages through a long item history and opens an old update whose
changes left the history, in a real browser, at 1280 and 390 px."""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import ChangeSource, Item, ItemChange
from erp.models import Run, RunStatus
from stores.models import Store
from tests.browser.conftest import log_in
from vxm import retention

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SKU = "Yerba Mate 1 kg + 10%"


@pytest.mark.parametrize("width", [1280, 390])
def test_admin_pages_a_long_history_and_reads_why_an_old_update_shows_no_changes(
    page: Any,
    live_server: Any,
    admin_user: Any,
    store: Store,
    screenshot: Callable[[str], Path],
    width: int,
) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": width, "height": 900})
    item = Item.objects.create(
        store=store, sku=SKU, name="Yerba Mate Ñandú", stock=5, wholesale_price=Decimal("4500")
    )
    now = timezone.now()
    old_run = Run.objects.create(
        store=store, kind="nonsistemas", status=RunStatus.SUCCEEDED, price_changed=1
    )
    Run.objects.filter(pk=old_run.pk).update(
        created_at=now - timedelta(days=500), finished_at=now - timedelta(days=500)
    )
    ItemChange.objects.create(
        store=store,
        item=item,
        at=now - timedelta(days=500, minutes=1),
        source=ChangeSource.ERP,
        actor="NonSistemas",
        run=old_run,
        old_price=Decimal("4000"),
        new_price=Decimal("4500"),
    )
    ItemChange.objects.bulk_create(
        ItemChange(
            store=store,
            item=item,
            at=now - timedelta(hours=n),
            source=ChangeSource.MANUAL,
            actor="María José Pérez",
            old_stock=n,
            new_stock=n + 1,
        )
        for n in range(1, 121)
    )
    assert retention.prune(days=400).counts["item_changes"] == 1

    log_in(page, live_server.url, admin_user.email)
    page.goto(live_server.url + reverse("catalog:item", args=[store.slug, item.pk]))
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("1 → 2")
    page.get_by_role("link", name="Más antiguos").click()
    expect(rows.first).to_contain_text("51 → 52")
    page.get_by_role("link", name="Más antiguos").click()
    expect(rows).to_have_count(20)
    expect(rows.last).to_contain_text("120 → 121")
    expect(page.locator("#history-retention")).to_have_text(
        "El historial guarda los cambios de los últimos 400 días."
    )
    screenshot(f"history-item-last-page-{width}")
    page.get_by_role("link", name="Más recientes").click()
    expect(rows.first).to_contain_text("51 → 52")

    page.goto(live_server.url + reverse("erp:run", args=[store.slug, old_run.pk]))
    expect(page.locator("#changes-pruned")).to_contain_text(
        "sus cambios ya no están en el historial: se guardan 400 días"
    )
    screenshot(f"history-old-run-{width}")
