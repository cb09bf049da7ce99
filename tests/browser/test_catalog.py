"""A store admin's catalog work in a real browser: find items, fix one by hand,
import a price list that is wrong and then right (applied in the background by
the task worker, as large files are).

Every page here also runs under the Content-Security-Policy: a style or script
it refuses is a console error, which fails the test (tests/browser/conftest.py).
"""

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from catalog.models import ChangeSource, Item, ItemChange
from stores.models import Store
from tests.browser.conftest import log_in
from tests.erp.sync_helpers import make_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def catalog(store: Store) -> None:
    make_items(
        store,
        [("ACE-0001", 0, "100.00"), ("BUL-0002", 4, "200.00"), ("CAB-0003", 80, "50.00")],
        names={
            "ACE-0001": "Aceite de girasol 1,5 l x 12",
            "BUL-0002": "Bulón 8 mm x 100",
            "CAB-0003": "Cable unipolar 2,5 mm x 100 m",
        },
    )


def listed_skus(page: Any) -> list[str]:
    return [s.strip() for s in page.locator("table tbody tr td:first-child").all_inner_texts()]


def test_admin_finds_items_edits_one_and_imports_a_price_list(
    page: Any,
    live_server: Any,
    admin_user: Any,
    store: Store,
    catalog: None,
    tmp_path: Path,
    screenshot: Callable[[str], Path],
    settings: Any,
    run_worker: Callable[[], str],
) -> None:
    from playwright.sync_api import expect

    log_in(page, live_server.url, admin_user.email)
    assert listed_skus(page) == ["ACE-0001", "BUL-0002", "CAB-0003"]

    # ---- search and filters -----------------------------------------------------------
    page.get_by_label("Buscar por SKU o nombre").fill("cable")
    page.get_by_role("button", name="Buscar").click()
    expect(page.locator("table tbody tr")).to_have_count(1)
    assert listed_skus(page) == ["CAB-0003"]
    page.get_by_role("link", name="Ver todo").click()
    page.get_by_label("Filtrar por stock").select_option("low")
    page.get_by_role("button", name="Buscar").click()
    expect(page.locator("table tbody tr")).to_have_count(1)
    assert listed_skus(page) == ["BUL-0002"]
    expect(page.get_by_text("Stock bajo", exact=True).last).to_be_visible()
    screenshot("catalog-01-low-stock")

    # ---- a manual edit, kept in the history ----------------------------------------------
    page.get_by_role("link", name="BUL-0002").click()
    expect(page.get_by_role("heading", name="BUL-0002 · Bulón 8 mm x 100")).to_be_visible()
    page.get_by_label("Stock").fill("25")
    page.get_by_role("button", name="Guardar").click()
    expect(page.get_by_text("Guardado: stock 4 → 25.")).to_be_visible()
    history = page.locator("table tbody tr").first
    expect(history).to_contain_text("Edición manual")
    expect(history).to_contain_text("4 → 25")
    screenshot("catalog-02-item-edited")

    # ---- a CSV with a bad row: nothing is imported, the row is pointed at -----------------
    page.get_by_role("link", name="\u2039 Catálogo").click()
    page.get_by_role("link", name="Importar CSV").click()
    bad = tmp_path / "lista.csv"
    bad.write_text(
        "sku,name,stock,wholesale_price\n"
        "ACE-0001,Aceite de girasol 1,5 l x 12,10,120.00\n"  # an unquoted comma
        "NUE-0004,Nuevo,3,9.50\n",
        encoding="utf-8",
    )
    page.get_by_label("Archivo CSV").set_input_files(str(bad))
    page.get_by_role("button", name="Importar").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("No se importó nada")
    expect(alert.locator("tbody tr")).to_have_count(1)
    expect(alert.locator("tbody tr")).to_contain_text("Tiene más columnas que el encabezado")
    screenshot("catalog-03-import-refused")
    assert not Item.objects.filter(store=store, sku="NUE-0004").exists()

    # ---- fixed, it imports; as a large file would, in the background ---------------------
    settings.VXM_CSV_INLINE_BYTES = 10
    bad.write_text(
        "sku,name,stock,wholesale_price\n"
        '"ACE-0001","Aceite de girasol 1,5 l x 12",10,120.00\n'
        "NUE-0004,Nuevo,3,9.50\n",
        encoding="utf-8",
    )
    page.get_by_label("Archivo CSV").set_input_files(str(bad))
    page.get_by_role("button", name="Importar").click()
    expect(page.get_by_role("heading", name="Importación de «lista.csv»")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("En cola")
    screenshot("catalog-04-import-queued")
    run_worker()
    # The page learns by itself (polling) that the worker applied it.
    expect(page.get_by_role("heading", name="Resultado")).to_be_visible()
    screenshot("catalog-05-imported")
    page.get_by_role("link", name="Ver el catálogo").click()
    assert listed_skus(page) == ["ACE-0001", "BUL-0002", "CAB-0003", "NUE-0004"]
    aceite = Item.objects.get(store=store, sku="ACE-0001")
    assert (aceite.stock, aceite.wholesale_price) == (10, Decimal("120.00"))
    assert ItemChange.objects.filter(item=aceite, source=ChangeSource.CSV).exists()
