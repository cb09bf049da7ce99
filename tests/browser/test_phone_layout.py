"""Every page on a 390 px phone: nothing needs sideways scrolling.

A store admin on a phone (390 by 844, an iPhone 12 to 15) opens each page of the
panel with real-store data at its widest: long Spanish names with accents, long
SKUs with `# + %`, stock in the billions, prices like $ 999.999.999,99. On each
page the document must not scroll sideways, and every table cell (each row's
stock and price above all) and every figure box must lie inside the screen with
its text inside its own box: a cell hidden past the right edge of a table that
scrolls by itself is as invisible as one past the page's edge.

Screenshots of each page at 390 and 1280 px go to /tmp/vxm-screens/phone-*.
"""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import CatalogImport, ChangeSource, ImportStatus, Item, ItemChange
from erp.models import (
    AuditAction,
    AuditEvent,
    Connection,
    ErpKind,
    IssueKind,
    Run,
    RunIssue,
    RunStatus,
)
from stores.models import Membership, Store
from tests.browser.conftest import SCREENS, log_in
from tests.erp.sync_helpers import make_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
BIG_PRICE = "$ 999.999.999,99"
LONG_SKU = "FERR-AUTOPERF-HEX-INOX-M8X100#CAJA+10%"
X = "\u00d7"  # the multiplication sign, as in real names ("caja X 100")
LONG_NAME = (
    "Tornillo autoperforante hexagonal de acero inoxidable con arandela de neopreno, "
    f"caja {X} 100 unidades — línea Ñandú Ferretería Industrial"
)
ACTOR = "administración.compras.mayoristas@distribuidora-sur-patagónica.com.ar"


@pytest.fixture
def shop(store: Store, admin_user: Any) -> dict[str, int]:
    """A store with the widest values each page can show."""
    make_items(
        store,
        [
            (LONG_SKU, 1_234_567_890, "999999999.99"),
            ("ÑAN-0002 lámpara", 0, "18250.50"),
            ("BUL-0003", 4, "999999999.99"),
        ],
        names={
            LONG_SKU: LONG_NAME,
            "ÑAN-0002 lámpara": f"Lámpara LED E27 luz cálida, pack {X} 12 — edición única",
            "BUL-0003": f"Bulón cabeza hexagonal galvanizado 8 mm {X} 100 mm, caja {X} 50",
        },
    )
    item = Item.objects.get(store=store, sku=LONG_SKU)
    now = timezone.now()
    connection = Connection(
        store=store,
        kind=ErpKind.NONSISTEMAS,
        url="https://nonsistemas.distribuidora-sur-patagónica.com.ar:8443/api/v2/",
        username="api-ventas-mayoristas-sucursal-comodoro",
    )
    connection.set_password("s3cret-api")
    connection.save()
    run = Run.objects.create(
        store=store,
        kind=ErpKind.NONSISTEMAS,
        status=RunStatus.WARNINGS,
        full=True,
        requested_by=admin_user,
        started_at=now - timedelta(minutes=75),
        finished_at=now - timedelta(minutes=2),
        received=1_234_567,
        matched=1_200_000,
        stock_changed=987_654,
        price_changed=876_543,
        unchanged=212_346,
        unmatched=34_567,
        ambiguous=1_234,
        invalid=2_345,
        price_rejected=3_456,
        discontinued=4_567,
        locked=5_678,
        pages=12_346,
        requests=12_400,
        retries=12,
        relogins=3,
    )
    for sku, old_stock, old_price in (
        (LONG_SKU, 999_999_999, "888888888.88"),
        ("BUL-0003", 1_000_000, "1.00"),
    ):
        changed = Item.objects.get(store=store, sku=sku)
        ItemChange.objects.create(
            store=store,
            item=changed,
            at=now - timedelta(minutes=3),
            source=ChangeSource.ERP,
            run=run,
            actor="NonSistemas",
            old_stock=old_stock,
            new_stock=changed.stock,
            old_price=Decimal(old_price),
            new_price=changed.wholesale_price,
        )
    ItemChange.objects.create(
        store=store,
        item=item,
        at=now - timedelta(days=1),
        source=ChangeSource.MANUAL,
        user=admin_user,
        actor=ACTOR,
        old_stock=1_000_000_000,
        new_stock=999_999_999,
        old_price=Decimal("999999999.99"),
        new_price=Decimal("888888888.88"),
    )
    ItemChange.objects.create(
        store=store, item=item, at=now - timedelta(days=2), source=ChangeSource.LOCK, actor=ACTOR
    )
    RunIssue.objects.bulk_create(
        [
            RunIssue(
                run=run,
                kind=IssueKind.UNMATCHED,
                code="  CÓD-ÑANDÚ-AUTOPERFORANTE-INOXIDABLE-M8X100#CAJA+10% ",
                reason=(
                    "El código no es el SKU de ningún producto de la tienda "
                    "(sin importar mayúsculas ni espacios)."
                ),
            ),
            RunIssue(
                run=run,
                kind=IssueKind.PRICE_REJECTED,
                code="BUL-0003",
                sku="BUL-0003",
                reason=(
                    "El precio 1.234.567.890.123,45 no entra en el catálogo "
                    "(máximo $ 999.999.999.999,99): revisalo en NonSistemas."
                ),
            ),
        ]
    )
    AuditEvent.objects.create(
        store=store,
        user=admin_user,
        actor=ACTOR,
        action=AuditAction.CONFIGURED,
        detail=(
            "URL https://nonsistemas.distribuidora-sur-patagónica.com.ar:8443/api/v2/, "
            "usuario api-ventas-mayoristas-sucursal-comodoro"
        ),
    )
    done = CatalogImport.objects.create(
        store=store,
        requested_by=admin_user,
        actor=ACTOR,
        filename="lista-de-precios-mayoristas-ferretería-diciembre-2026-versión-final.csv",
        rows=1_234_567,
        status=ImportStatus.DONE,
        finished_at=now,
        report={
            "rows": 1_234_567,
            "created": 1_000_000,
            "updated": 234_000,
            "unchanged": 567,
            "skipped": [
                {
                    "line": 1_234_567,
                    "sku": LONG_SKU,
                    "reason": "El SKU nombra a más de un producto: dejá uno solo en la tienda.",
                }
            ],
            "ambiguous": 1,
            "applied": True,
        },
    )
    return {"item": item.pk, "run": run.pk, "import": done.pk}


def assert_fits(page: Any, where: str) -> int:
    """No sideways scroll; every cell and figure inside the screen and its own box.

    Returns how many cells and figures were checked.
    """
    width = page.evaluate("window.innerWidth")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        """w => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > w + 0.5
                         || e.scrollWidth > e.clientWidth + 1)
            .map(e => `${e.tagName}.${e.className}: ${(e.innerText || '').trim().slice(0, 40)}`)
            .slice(-3)""",
        width,
    )
    assert scroll <= width, f"{where}: the page scrolls sideways ({scroll} px > {width} px): {wide}"
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('tbody td, tbody th, .stats > div')]
            .filter(e => e.getClientRects().length)
            .map(e => {
                const r = e.getBoundingClientRect();
                return {text: e.innerText.trim().slice(0, 60), left: r.left, right: r.right,
                        overflow: e.scrollWidth - e.clientWidth};
            })"""
    )
    outside = [b for b in boxes if b["right"] > width + 0.5 or b["left"] < -0.5]
    assert not outside, f"{where}: off the screen: {outside}"
    spilling = [b for b in boxes if b["overflow"] > 1]
    assert not spilling, f"{where}: text wider than its box: {spilling}"
    return len(boxes)


def assert_row_values_visible(page: Any, where: str, labels: tuple[str, ...]) -> None:
    """Each row's cells of these columns (stock, price) are on the screen."""
    width = page.evaluate("window.innerWidth")
    for label in labels:
        cells = page.locator(f'tbody td[data-label="{label}"]')
        assert cells.count() > 0, f"{where}: no {label} cells"
        for cell in cells.all():
            box = cell.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (
                f"{where}: {label} {cell.inner_text()!r} is off the screen: {box}"
            )


@pytest.mark.urls("tests.error_urls")  # adds a view that crashes, for the 500 page
def test_every_page_fits_a_phone(
    page: Any,
    live_server: Any,
    admin_user: Any,
    store: Store,
    shop: dict[str, int],
    tmp_path: Path,
    screenshot: Callable[[str], Path],
) -> None:
    from playwright.sync_api import expect

    def url(name: str, **kwargs: Any) -> str:
        return live_server.url + reverse(name, kwargs={"store_slug": store.slug, **kwargs})

    def both_widths(name: str, where: str) -> None:
        page.set_viewport_size(PHONE)
        assert assert_fits(page, where) > 0 or where in NO_CELLS
        screenshot(f"phone-{name}-390")
        page.set_viewport_size(DESKTOP)
        screenshot(f"phone-{name}-1280")
        page.set_viewport_size(PHONE)

    NO_CELLS = {"login", "settings", "import"}

    page.set_viewport_size(PHONE)
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", name="Ingresar")).to_be_visible()
    both_widths("01-login", "login")
    log_in(page, live_server.url, admin_user.email)

    # ---- the catalog: every row's stock and price on the screen -----------------------
    expect(page.locator("tbody tr")).to_have_count(3)
    expect(page.locator("tbody").get_by_text(BIG_PRICE)).to_have_count(2)
    assert_row_values_visible(page, "catalog", ("Stock", "Precio mayorista"))
    # Still a table for a screen reader (Chromium's own accessibility tree): the
    # header row is only hidden from sight, each price a cell under its header.
    tree = page.context.new_cdp_session(page).send("Accessibility.getFullAXTree")
    roles = [node.get("role", {}).get("value") for node in tree["nodes"] if not node["ignored"]]
    assert roles.count("row") == 4 and "columnheader" in roles, roles
    names = [node.get("name", {}).get("value") for node in tree["nodes"] if not node["ignored"]]
    assert "Precio mayorista" in names, names
    both_widths("02-catalog", "catalog")

    # ---- the item and its history -------------------------------------------------------
    page.goto(url("catalog:item", pk=shop["item"]))
    expect(page.get_by_role("heading", name=f"{LONG_SKU} · {LONG_NAME}")).to_be_visible()
    expect(page.locator(".stats").get_by_text(BIG_PRICE)).to_be_visible()
    assert_row_values_visible(page, "item history", ("Stock", "Precio mayorista"))
    both_widths("03-item", "item")

    # ---- a run: its changes and what it did not apply, then the history of runs ---------
    page.goto(url("erp:run", run_id=shop["run"]))
    expect(page.get_by_role("heading", name=f"Actualización #{shop['run']}")).to_be_visible()
    assert_row_values_visible(page, "run changes", ("Stock", "Precio mayorista", "Motivo"))
    both_widths("04-run", "run")

    page.goto(url("erp:runs"))
    assert_row_values_visible(page, "runs", ("Stock cambiado", "Precio cambiado", "Estado"))
    both_widths("05-runs", "runs")

    page.goto(url("erp:integrations"))
    expect(page.get_by_role("heading", name="Integraciones \u203a ERP", level=1)).to_be_visible()
    assert_row_values_visible(page, "ERP page", ("Stock cambiado", "Precio cambiado", "Detalle"))
    both_widths("06-erp", "erp")

    page.goto(url("erp:settings", kind="nonsistemas"))
    both_widths("07-erp-settings", "settings")

    # ---- imports: the form, a refused file, a finished background import ---------------
    page.goto(url("catalog:import"))
    both_widths("08-import", "import")
    bad = tmp_path / "lista-de-precios-ferretería.csv"
    bad.write_text(
        "sku,name,stock,wholesale_price\n"
        f"{LONG_SKU},{LONG_NAME},10,999999999.99\n",  # an unquoted comma in the name
        encoding="utf-8",
    )
    page.get_by_label("Archivo CSV").set_input_files(str(bad))
    page.get_by_role("button", name="Importar").click()
    expect(page.get_by_role("alert")).to_contain_text("No se importó nada")
    assert_row_values_visible(page, "refused import", ("SKU", "Problema"))
    both_widths("09-import-refused", "refused import")

    page.goto(url("catalog:import_detail", pk=shop["import"]))
    expect(page.get_by_role("heading", name="Resultado")).to_be_visible()
    assert_row_values_visible(page, "import report", ("SKU", "Problema"))
    both_widths("10-import-done", "import done")

    # ---- the store chooser, once the admin has a second store with a long name ----------
    other = Store.objects.create(
        name="Distribuidora Mayorista Ferretería Ñandú Patagónica Sociedad Anónima",
        slug="nandu-patagonica",
    )
    Membership.objects.create(store=other, user=admin_user)
    page.goto(live_server.url + reverse("home"))
    expect(page.get_by_role("heading", name="Tus tiendas")).to_be_visible()
    both_widths("11-stores", "stores")

    # ---- error pages, in a tab of their own: the fixture takes any 4xx/5xx for a fault --
    errors = page.context.new_page()
    errors.set_viewport_size(PHONE)
    for name, path, status, heading in (
        ("12-404", url("catalog:item", pk=999_999), 404, "No encontramos esta página"),
        ("13-500", "/test-crash/", 500, "Algo falló de nuestro lado"),
    ):
        response = errors.goto(live_server.url + path if path.startswith("/") else path)
        assert response is not None and response.status == status
        expect(errors.get_by_role("heading", name=heading)).to_be_visible()
        assert_fits(errors, name)
        errors.screenshot(path=str(SCREENS / f"phone-{name}-390.png"), full_page=True)
    errors.close()
