"""Issue #3's "Done when", in a real browser.

A store admin logs in, connects the store to NonSistemas (the stand-in) under
Integraciones > ERP, verifies the connection, asks for an update and watches it
finish on the same page (the status box polls an htmx fragment while the run is
queued or running), reads the run's changes and the codes with no product; then
a price changes in the ERP, the admin updates again and sees exactly that change.

The update runs the way production runs it: the button only queues a task in
the database; the task worker (`vxm db_worker`) runs as a separate process. The
test starts it once the page shows the run waiting in the queue, so the page can
only learn that the run finished by polling.
"""

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from stores.models import Store
from tests.browser.conftest import log_in
from tests.conftest import ERP_PASSWORD, ERP_USER
from tests.erp.sync_helpers import make_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNMATCHED = "Código sin producto en la tienda"
ERP_PAGE = "Integraciones \u203a ERP"  # the menu entry and the page's title


def erp_items(standin: Any) -> list[dict[str, Any]]:
    # Last modified yesterday: an incremental update after the first one
    # does not receive them again.
    yesterday = (standin.now() - timedelta(days=1)).isoformat(timespec="seconds")

    def item(codigo: str, stock: str, price: str) -> dict[str, Any]:
        return {
            "codigo": codigo,
            "descripcion": f"Artículo {codigo.strip()}",
            "stock": stock,
            "precio_mayorista": price,
            "moneda": "ARS",
            "activo": True,
            "modificado": yesterday,
        }

    return [
        item("  ace-0001 ", "340.750", "18250.00"),  # case and spaces differ; stock and price
        item("BUL-0002", "12.000", "200.00"),  # stock only
        item("cab-0003", "8.000", "55.50"),  # case differs; price only
        item("DUC-0004", "3.000", "75.00"),  # the same as the store's
        item("GHOST-9001", "5.000", "5.00"),  # no such product in the store
        item("FANT-9002 ", "1.000", "1.00"),  # no such product either
    ]


@pytest.fixture
def catalog(store: Store, standin: Any) -> None:
    rows = [
        ("ACE-0001", "Aceite de girasol 1,5 l x 12", 5, "100.00"),
        ("BUL-0002", "Bulón 8 mm x 100", 10, "200.00"),
        ("CAB-0003", "Cable unipolar 2,5 mm x 100 m", 8, "50.00"),
        ("DUC-0004", "Ducha eléctrica 5500 W", 3, "75.00"),
        ("LOC-0005", "Local: no está en el ERP", 4, "9.99"),
    ]
    make_items(
        store,
        [(sku, stock, price) for sku, _, stock, price in rows],
        names={sku: name for sku, name, _, _ in rows},
    )
    standin.load(erp_items(standin))


def table_rows(table: Any) -> list[list[str]]:
    """The body rows of a table as lists of cell texts, whitespace collapsed."""
    return [
        [" ".join(cell.split()) for cell in row]
        for row in table.locator("tbody tr").evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.innerText))"
        )
    ]


def test_admin_connects_verifies_updates_and_sees_exactly_what_changed(
    page: Any,
    live_server: Any,
    admin_user: Any,
    store: Store,
    standin: Any,
    catalog: None,
    run_worker: Callable[[], str],
    screenshot: Callable[[str], Path],
) -> None:
    from playwright.sync_api import expect

    # ---- log in: with one store, straight to its catalog ----------------------------
    log_in(page, live_server.url, admin_user.email)
    assert catalog_shown(page) == {
        "ACE-0001": (5, Decimal("100.00")),
        "BUL-0002": (10, Decimal("200.00")),
        "CAB-0003": (8, Decimal("50.00")),
        "DUC-0004": (3, Decimal("75.00")),
        "LOC-0005": (4, Decimal("9.99")),
    }
    screenshot("02-catalog")

    # ---- Integraciones > ERP: connect NonSistemas --------------------------------------
    page.get_by_role("link", name=ERP_PAGE, exact=True).click()
    expect(page.get_by_role("heading", name=ERP_PAGE, level=1)).to_be_visible()
    expect(page.get_by_text("Los pedidos NO se sincronizan.")).to_be_visible()
    expect(page.get_by_text("No conectado")).to_be_visible()
    page.get_by_role("link", name="Conectar").click()

    expect(page.get_by_role("heading", name="Configuración de NonSistemas")).to_be_visible()
    # A malformed URL and no password: errors next to their fields, nothing saved.
    page.get_by_label("URL").fill("ftp//nonsistemas")
    page.get_by_label("Usuario").fill(ERP_USER)
    page.get_by_role("button", name="Guardar").click()
    expect(page.get_by_text("Escribí la contraseña.")).to_be_visible()
    url_field = page.locator(".field").filter(has=page.get_by_label("URL"))
    expect(url_field.locator(".errorlist")).to_be_visible()
    screenshot("03-settings-validation-error")

    page.get_by_label("URL").fill(standin.url)
    page.get_by_label("Usuario").fill(ERP_USER)
    page.get_by_label("Contraseña").fill(ERP_PASSWORD)
    page.get_by_role("button", name="Guardar").click()
    expect(page.get_by_text("Configuración guardada.")).to_be_visible()
    cards = page.locator("#erp-cards")
    expect(cards.locator(".badge")).to_have_text("Sin verificar")

    # ---- verify ----------------------------------------------------------------------
    page.get_by_role("button", name="Verificar conexión").click()
    expect(page.locator(".messages .success")).to_contain_text(
        re.compile(r"La conexión funciona: NonSistemas \S+")
    )
    expect(cards.locator(".badge")).to_have_text("Conectado")
    expect(cards).to_contain_text(re.compile(r"Verificada el .*La conexión funciona"))
    status = page.locator("#erp-status")
    expect(status).to_contain_text("Todavía no se hizo ninguna actualización.")
    screenshot("04-erp-before-update")

    # ---- first update: the whole catalog ---------------------------------------------
    first = press_update_and_watch_it_finish(page, status, run_worker)
    # Codes with no product are reported, not a warning: "Completada".
    expect(status.locator(".badge")).to_have_text("Completada")
    expect(status).to_contain_text("6 recibidos")
    expect(status).to_contain_text("2 códigos sin producto en la tienda")
    screenshot("05-erp-after-update")

    status.get_by_role("link", name="Ver los cambios y lo que no se aplicó").click()
    expect(page.get_by_role("heading", name=f"Actualización #{first}")).to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("Completada")
    assert changes_shown(page) == [
        (
            "ACE-0001",
            "Aceite de girasol 1,5 l x 12",
            (5, 340),
            (Decimal("100.00"), Decimal("18250.00")),
        ),
        ("BUL-0002", "Bulón 8 mm x 100", (10, 12), None),
        ("CAB-0003", "Cable unipolar 2,5 mm x 100 m", None, (Decimal("50.00"), Decimal("55.50"))),
    ]
    issues = page.locator("#no-aplicados ~ .table-wrap table").first
    assert sorted((kind, code, sku) for kind, code, sku, _ in table_rows(issues)) == [
        (UNMATCHED, "FANT-9002", "—"),
        (UNMATCHED, "GHOST-9001", "—"),
    ]
    # The chip counts what the figure above it counts, under the same label.
    expect(page.get_by_role("link", name="Códigos sin producto en la tienda (2)")).to_be_visible()
    screenshot("06-run-first")

    # ---- a price changes in NonSistemas; the admin updates again -------------------------
    standin.edit([{"codigo": "DUC-0004", "precio_mayorista": "80.00"}])
    page.get_by_role("link", name=ERP_PAGE, exact=True).click()
    expect(page.get_by_role("heading", name=ERP_PAGE, level=1)).to_be_visible()
    expect(page.get_by_text("Conectado", exact=True)).to_be_visible()

    second = press_update_and_watch_it_finish(page, status, run_worker)
    assert second != first
    expect(status.locator(".badge")).to_have_text("Completada")
    expect(status).to_contain_text("0 con stock cambiado · 1 con precio cambiado")
    screenshot("07-erp-after-second-update")

    status.get_by_role("link", name="Ver los cambios y lo que no se aplicó").click()
    expect(page.get_by_role("heading", name=f"Actualización #{second}")).to_be_visible()
    assert changes_shown(page) == [
        ("DUC-0004", "Ducha eléctrica 5500 W", None, (Decimal("75.00"), Decimal("80.00"))),
    ]
    expect(page.locator("#no-aplicados ~ p.muted").last).to_have_text("Nada.")
    screenshot("08-run-second")

    # The catalog holds the ERP's values; the item the ERP does not have is as it was.
    page.get_by_role("link", name="Catálogo", exact=True).click()
    expect(page.get_by_role("heading", name="Catálogo")).to_be_visible()
    assert catalog_shown(page) == {
        "ACE-0001": (340, Decimal("18250.00")),
        "BUL-0002": (12, Decimal("200.00")),
        "CAB-0003": (8, Decimal("55.50")),
        "DUC-0004": (3, Decimal("80.00")),
        "LOC-0005": (4, Decimal("9.99")),
    }
    screenshot("09-catalog-after")


def number(text: str) -> Decimal:
    """A number as the page writes it in Spanish: "$ 18.250,00", "18 250,00", "340",
    "Stock bajo 5" (a badge before the stock)."""
    digits = re.sub(r"[^\d,-]", "", text)  # drops symbols and any thousands separator
    return Decimal(digits.replace(",", "."))


def before_after(cell: str) -> tuple[Decimal, Decimal] | None:
    """ "100,00 → 18.250,00" → (100.00, 18250.00); "sin cambio" → None."""
    if cell == "sin cambio":
        return None
    old, new = cell.split("→")
    return number(old), number(new)


def catalog_shown(page: Any) -> dict[str, tuple[Decimal, Decimal]]:
    """The catalog list: SKU → (stock, wholesale price)."""
    rows = table_rows(page.get_by_role("table"))
    return {sku: (number(stock), number(price)) for sku, _, stock, price, _ in rows}


def changes_shown(page: Any) -> list[tuple[Any, ...]]:
    """The run page's changes: (SKU, name, stock old → new, price old → new)."""
    table = page.locator("#cambios ~ .table-wrap table").first
    return [
        (sku, name, before_after(stock), before_after(price))
        for sku, name, stock, price in table_rows(table)
    ]


def press_update_and_watch_it_finish(page: Any, status: Any, run_worker: Callable[[], str]) -> int:
    """Press the update button, see the run queued, run the worker, and see the
    status box turn to the finished run on the same page: no reload, no click."""
    from playwright.sync_api import expect

    page.get_by_role("button", name="Actualizar stock y precios ahora").click()
    requested = page.locator(".messages .success")
    expect(requested).to_contain_text(re.compile(r"Actualización #\d+ pedida"))
    run_id = int(re.search(r"#(\d+)", requested.inner_text()).group(1))  # type: ignore[union-attr]
    expect(status.locator(".badge")).to_have_text("En cola")
    expect(status).to_contain_text("Esperando a que empiece…")
    # Nothing to press while it runs, and the page says why.
    verify = page.get_by_role("button", name="Verificar conexión")
    update = page.get_by_role("button", name="Actualizar stock y precios ahora")
    expect(verify).to_be_disabled()
    expect(update).to_be_disabled()
    expect(page.locator("#erp-busy")).to_contain_text("Hay una actualización en curso")
    assert page.evaluate("typeof window.htmx") == "object", "htmx did not load"

    # Whatever the page shows from now on comes from htmx polls of this document.
    page.evaluate("window.__sameDocument = true")
    polls: list[str] = []

    def note_poll(request: Any) -> None:
        if request.headers.get("hx-request") == "true":
            polls.append(request.url)

    page.on("request", note_poll)
    run_worker()
    expect(status).to_contain_text(f"Última actualización #{run_id}")
    expect(status).not_to_have_attribute("hx-trigger", re.compile("."))  # polling stopped
    # The last poll enabled the buttons again: no reload needed to press them.
    expect(verify).to_be_enabled()
    expect(update).to_be_enabled()
    expect(page.locator("#erp-busy")).to_have_count(0)
    page.remove_listener("request", note_poll)
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    # (Each poll carries `said`, the state the box showed: erp/_live.html.)
    assert polls and all(urlsplit(url).path.endswith("/erp/status/") for url in polls), polls
    return run_id
