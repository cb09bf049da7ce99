"""Issue #11 in a real browser: a store admin previews an update, sees an update
held by the guard rails, discards it, and applies the next one anyway.

Updates run as in production: the buttons queue a task, the worker
(`vxm db_worker`) runs it as its own process.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from erp.models import Run, RunMode, RunStatus
from stores.models import Store
from tests.browser.conftest import log_in
from tests.erp.test_plan_and_guard_rails import SKUS, catalog, in_step

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.guard_rails,
]


def test_admin_previews_discards_a_held_update_and_applies_the_next_one_anyway(
    page: Any,
    live_server: Any,
    admin_user: Any,
    store: Store,
    standin: Any,
    run_worker: Callable[[], str],
    screenshot: Callable[[str], Path],
) -> None:
    from playwright.sync_api import expect

    in_step(store, standin)
    before = catalog(store)
    # The ERP's stock of 90 of the store's 120 items drops to 0: a broken export.
    standin.edit([{"codigo": f"  {sku.upper()} ", "stock": "0.000"} for sku in SKUS[:90]])
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    log_in(page, live_server.url, admin_user.email)
    erp_page = live_server.url + reverse("erp:integrations", args=[store.slug])

    # ---- preview: nothing changes, the run page says what would ------------------------
    page.goto(erp_page)
    page.get_by_role("button", name="Ver qué cambiaría").click()
    expect(page.locator(".messages .success")).to_contain_text("Vista previa")
    run_worker()
    preview = Run.objects.get(mode=RunMode.PREVIEW)
    page.goto(live_server.url + reverse("erp:run", args=[store.slug, preview.pk]))
    expect(page.get_by_text("Vista previa: no se cambió nada.")).to_be_visible()
    expect(page.get_by_text("90 de 120 ítems quedarían con stock 0.").first).to_be_visible()
    screenshot("a-01-preview")
    assert catalog(store) == before

    # ---- the update is held; the ERP page says so ------------------------------------
    page.goto(erp_page)
    page.get_by_role("button", name="Actualizar stock y precios ahora").click()
    run_worker()
    page.goto(erp_page)
    banner = page.locator("[id^=retenida-]")
    expect(banner).to_contain_text("quedó retenida: no se cambió nada.")
    screenshot("a-02-erp-page-held")
    banner.get_by_role("link", name="Revisar y decidir").click()
    expect(page.get_by_role("button", name="Aplicar igual")).to_be_visible()
    screenshot("a-03-held-run")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot("a-03-held-run-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # ---- discard: nothing changes, and the next update is held again -------------------
    page.get_by_role("button", name="Descartar").click()
    expect(page.locator(".messages .success")).to_contain_text("descartada")
    assert asked and asked[-1].startswith("¿Descartar esta actualización?")
    expect(page.get_by_role("button", name="Aplicar igual")).to_have_count(0)
    assert catalog(store) == before

    page.goto(erp_page)
    page.get_by_role("button", name="Actualizar stock y precios ahora").click()
    run_worker()
    held = Run.objects.get(status=RunStatus.HELD)
    page.goto(live_server.url + reverse("erp:run", args=[store.slug, held.pk]))

    # ---- apply anyway ------------------------------------------------------------------
    page.get_by_role("button", name="Aplicar igual").click()
    expect(page.locator(".messages .success")).to_contain_text("Se está aplicando")
    assert asked[-1].startswith("¿Aplicar igual")
    run_worker()
    page.reload()
    expect(page.locator("h1 .badge")).to_have_text("Completada")
    screenshot("a-04-applied")
    assert sum(1 for stock, _ in catalog(store).values() if stock == 0) == 90
