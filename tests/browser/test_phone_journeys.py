"""The main journeys of a store admin on a 390 px phone, in Chromium (issue #12,
item 6, in Spanish; the English half comes with the translation).

Log in, find an item, edit it, import a CSV, connect NonSistemas (the stand-in),
verify, update (the task worker runs as its own process), see the integration's
health and the catalog's "updated … ago" line, open the run, download its report.
At every step the page must not scroll sideways
(document.scrollingElement.scrollWidth <= innerWidth) and what the admin came for
(a stock, a price, a message) must be on the screen.

test_phone_layout.py checks each page's layout with the widest values; this one
walks through the product as a person does.
"""

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from catalog.models import Item
from stores.models import Store
from tests.browser.conftest import log_in
from tests.browser.test_erp_update import (  # noqa: F401 (`catalog` is a fixture)
    ERP_PAGE,
    catalog,
    press_update_and_watch_it_finish,
)
from tests.browser.test_phone_layout import PHONE
from tests.browser.test_report_downloads import download
from tests.conftest import ERP_PASSWORD, ERP_USER

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def assert_no_sideways_scroll(page: Any, where: str) -> None:
    width = page.evaluate("window.innerWidth")
    scroll = page.evaluate("document.scrollingElement.scrollWidth")
    assert width == PHONE["width"], where
    assert scroll <= width, f"{where}: the page scrolls sideways ({scroll} px > {width} px)"


def assert_on_screen(page: Any, locator: Any, where: str) -> None:
    """The element lies within the screen's width (no sideways scroll needed to read it)."""
    from playwright.sync_api import expect

    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (
        f"{where}: {locator.inner_text()!r} is off the screen: {box}"
    )


def test_admin_on_a_phone_finds_edits_imports_connects_updates_and_downloads_the_report(
    page: Any,
    live_server: Any,
    admin_user: Any,
    store: Store,
    standin: Any,
    catalog: None,  # noqa: F811
    tmp_path: Path,
    run_worker: Callable[[], str],
    screenshot: Callable[[str], Path],
) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size(PHONE)

    # ---- log in -----------------------------------------------------------------------
    log_in(page, live_server.url, admin_user.email)
    assert_no_sideways_scroll(page, "catalog")
    # Connected to no ERP yet: the catalog says nothing about one.
    expect(page.locator("#erp-freshness")).to_have_count(0)

    # ---- find an item: its stock and price on the screen ---------------------------------
    page.get_by_label("Buscar por SKU o nombre").fill("cable unipolar")
    page.get_by_role("button", name="Buscar").click()
    row = page.locator("tbody tr")
    expect(row).to_have_count(1)
    assert_on_screen(page, row.locator('td[data-label="Stock"]'), "search")
    expect(row.locator('td[data-label="Stock"]')).to_have_text("8")
    assert_on_screen(page, row.locator('td[data-label="Precio mayorista"]'), "search")
    expect(row.locator('td[data-label="Precio mayorista"]')).to_have_text("$ 50,00")
    assert_no_sideways_scroll(page, "search")
    screenshot("journey-390-01-search")

    # ---- edit it ----------------------------------------------------------------------
    page.get_by_role("link", name="CAB-0003").click()
    expect(
        page.get_by_role("heading", name="CAB-0003 · Cable unipolar 2,5 mm x 100 m")
    ).to_be_visible()
    page.get_by_label("Stock", exact=True).fill("25")
    page.get_by_label("Precio mayorista").fill("52,75")
    page.get_by_role("button", name="Guardar", exact=True).click()
    expect(page.get_by_text("Guardado: stock 8 → 25 y precio $ 50,00 → $ 52,75.")).to_be_visible()
    assert_on_screen(page, page.locator(".stats").get_by_text("$ 52,75"), "item")
    assert_no_sideways_scroll(page, "item")
    screenshot("journey-390-02-item-edited")

    # ---- import a CSV -------------------------------------------------------------------
    page.get_by_role("link", name="\u2039 Catálogo").click()
    page.get_by_role("link", name="Importar CSV").click()
    assert_no_sideways_scroll(page, "import")
    csv_file = tmp_path / "lista-de-precios-diciembre.csv"
    csv_file.write_text(
        "sku,name,stock,wholesale_price\n"
        '"DUC-0004","Ducha eléctrica 5500 W",7,80.00\n'
        '"NUE-0006 ","Ñandú: bulón #8 + arandela, 10% off",3,9.50\n',
        encoding="utf-8",
    )
    page.get_by_label("Archivo CSV").set_input_files(str(csv_file))
    page.get_by_role("button", name="Importar").click()
    expect(page.locator(".messages .success")).to_have_text(
        "Importación lista: creados 1, actualizados 1, sin cambios 0."
    )
    assert_no_sideways_scroll(page, "imported")
    screenshot("journey-390-03-imported")
    nuevo = Item.objects.get(store=store, sku="NUE-0006")
    assert (nuevo.stock, nuevo.wholesale_price) == (3, Decimal("9.50"))

    # ---- connect NonSistemas and verify -------------------------------------------------
    page.get_by_role("link", name=ERP_PAGE, exact=True).click()
    expect(page.get_by_text("No conectado")).to_be_visible()
    assert_no_sideways_scroll(page, "ERP, not connected")
    page.get_by_role("link", name="Conectar").click()
    page.get_by_label("URL").fill(standin.url)
    page.get_by_label("Usuario").fill(ERP_USER)
    page.get_by_label("Contraseña").fill(ERP_PASSWORD)
    page.get_by_role("button", name="Guardar").click()
    expect(page.get_by_text("Configuración guardada.")).to_be_visible()
    health = page.locator("#erp-health")
    expect(health).to_contain_text("Última actualización buena Todavía ninguna.")
    page.get_by_role("button", name="Verificar conexión").click()
    expect(page.locator(".messages .success")).to_contain_text("La conexión funciona")
    assert_no_sideways_scroll(page, "ERP, verified")
    screenshot("journey-390-04-verified")

    # ---- update: the page follows the run until it finished ------------------------------
    status = page.locator("#erp-status")
    run_id = press_update_and_watch_it_finish(page, status, run_worker)
    assert_no_sideways_scroll(page, "ERP, updated")
    # The health is drawn with the page: reload to read it after the run.
    page.reload()
    expect(health).to_contain_text("Última actualización buena hace menos de un minuto")
    expect(health.get_by_role("link", name="2 códigos")).to_be_visible()
    assert_on_screen(page, health.get_by_role("link", name="2 códigos"), "health")
    assert_no_sideways_scroll(page, "ERP health")
    screenshot("journey-390-05-updated")

    # ---- the codes with no product, from the health's link --------------------------------
    health.get_by_role("link", name="2 códigos").click()
    expect(page.get_by_role("heading", name=f"Actualización #{run_id}")).to_be_visible()
    codes = page.locator('#no-aplicados ~ .table-wrap td[data-label="Código en el ERP"]')
    expect(codes).to_have_count(2)
    assert sorted(codes.all_inner_texts()) == ["FANT-9002", "GHOST-9001"]
    assert_no_sideways_scroll(page, "run, unmatched")

    # ---- the run's changes and its report --------------------------------------------------
    page.goto(live_server.url + f"/s/{store.slug}/integrations/erp/runs/{run_id}/")
    changed = page.locator("#cambios ~ .table-wrap tbody tr").filter(has_text="ACE-0001")
    assert_on_screen(page, changed.locator('td[data-label="Precio mayorista"]'), "run")
    expect(changed.locator('td[data-label="Precio mayorista"]')).to_contain_text("$ 18.250,00")
    assert_no_sideways_scroll(page, "run")
    screenshot("journey-390-06-run")
    report = download(page, "Descargar Excel", tmp_path)
    assert report.name == f"actualizacion-{run_id}-cambios.xlsx"
    rows = list(openpyxl.load_workbook(report).active.iter_rows(values_only=True))
    by_sku = {row[0]: row for row in rows[1:]}
    assert by_sku["ACE-0001"][2:6] == (5, 340, 100, 18250)

    # ---- the catalog says when NonSistemas last updated it -----------------------------------
    page.get_by_role("link", name="Catálogo", exact=True).click()
    freshness = page.locator("#erp-freshness")
    expect(freshness).to_contain_text(
        re.compile(
            r"Stock y precios de NonSistemas: actualizados hace menos de un minuto "
            r"\(\d\d/\d\d \d\d:\d\d\)"
        )
    )
    assert_on_screen(page, freshness, "catalog freshness")
    assert_no_sideways_scroll(page, "catalog after the update")
    screenshot("journey-390-07-catalog")
