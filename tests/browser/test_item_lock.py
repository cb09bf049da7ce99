"""A store admin locks an item against NonSistemas in a real browser: the item page
says what that means, an update leaves the item alone and its run lists it as
locked, the catalog list finds it, and unlocking says how the ERP's values come back."""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from catalog.models import Item
from stores.models import Store
from tests.browser.conftest import log_in
from tests.erp.sync_helpers import connect, make_items, sync

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SKU = "Ñoquis 500 g + 10%"


def test_admin_locks_an_item_sees_the_notice_and_the_update_leaves_it_alone(
    page: Any,
    live_server: Any,
    admin_user: Any,
    store: Store,
    standin: Any,
    screenshot: Callable[[str], Path],
) -> None:
    from playwright.sync_api import expect

    connect(store, standin)
    make_items(store, [(SKU, 7, "1234.56"), ("ACE-0001", 1, "10.00")], names={SKU: "Ñoquis"})
    yesterday = (standin.now() - timedelta(days=1)).isoformat(timespec="seconds")
    standin.load(
        [
            {
                "codigo": code,
                "descripcion": code,
                "stock": "0.000",
                "precio_mayorista": "99999.00",
                "moneda": "ARS",
                "activo": True,
                "modificado": yesterday,
            }
            for code in ("ñoquis 500 G + 10%", "ACE-0001")
        ]
    )

    log_in(page, live_server.url, admin_user.email)
    page.get_by_role("link", name=SKU).click()
    notice = page.locator("#erp-overwrites")
    expect(notice).to_contain_text("El stock y el precio de este producto los maneja NonSistemas")
    expect(notice).to_contain_text("La próxima actualización que lo traiga reemplaza lo que")

    page.get_by_role("button", name="Bloquear frente a NonSistemas").click()
    expect(
        page.get_by_text(f"Bloqueado: NonSistemas no cambia el stock ni el precio de «{SKU}»")
    ).to_be_visible()
    locked = page.locator("#erp-locked")
    expect(locked).to_contain_text(
        "NonSistemas no cambia el stock ni el precio de este producto hasta que lo desbloquees"
    )
    expect(locked).to_contain_text(f"Lo bloqueó {admin_user.email}")
    expect(page.locator("#erp-overwrites")).to_have_count(0)
    expect(page.locator("table tbody tr").first).to_contain_text("Bloqueo frente a NonSistemas")
    screenshot("lock-01-item-locked")

    run = sync(store, full=True)
    assert run.locked == 1
    item = Item.objects.get(store=store, sku=SKU)
    assert (item.stock, item.wholesale_price) == (7, Decimal("1234.56"))

    page.goto(live_server.url + reverse("erp:run", args=[store.slug, run.pk]))
    page.get_by_role("link", name="Bloqueados en la tienda (1)").click()
    issues = page.locator("#no-aplicados ~ .table-wrap table tbody tr")
    expect(issues).to_have_count(1)
    expect(issues.first).to_contain_text("Bloqueado en la tienda")
    expect(issues.first).to_contain_text(SKU)
    screenshot("lock-02-run-lists-it")

    page.goto(live_server.url + reverse("catalog:list", args=[store.slug]))
    page.get_by_label("Filtrar por stock o bloqueo").select_option("locked")
    page.get_by_role("button", name="Buscar").click()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(SKU)
    expect(rows.first).to_contain_text("Bloqueado")

    rows.first.get_by_role("link", name=SKU).click()
    page.get_by_role("button", name="Desbloquear").click()
    expect(
        page.get_by_text(
            "Desbloqueado: la próxima actualización completa le trae el stock y el precio"
        )
    ).to_be_visible()
    expect(page.locator("#erp-overwrites")).to_be_visible()
    screenshot("lock-03-unlocked")
