"""Issue #12 item 2 in a real browser: a store admin watches a long update's
progress bar move without reloading, on a computer and on a phone, and cancels it.

The update runs as in production: the button queues a task, and the task worker
(`vxm db_worker`) runs it as a process of its own, here in the background while
the page polls. The stand-in has 20,000 items and answers each page after a
delay, so the update lasts long enough to be watched and cancelled.
"""

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from erp.models import Run, RunStatus
from nonsistemas_standin.faults import Fault
from nonsistemas_standin.generation import generated_items
from stores.models import Store
from tests.browser.conftest import SCREENS, _database_url, log_in
from tests.erp.sync_helpers import connect, make_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ITEMS = 20_000
PAGE_SIZE = 500  # 40 pages
PAGE_DELAY = 0.6  # seconds per page request: the update lasts 25 s or more


@pytest.fixture
def big_catalog(store: Store, standin: Any) -> None:
    """The store sells the stand-in's 20,000 generated items, all with stock 0."""
    items = generated_items(ITEMS)
    make_items(store, [(item["codigo"], 0, "1.00") for item in items])
    standin.generate(ITEMS)
    connect(store, standin)
    standin.inject(Fault(kind="delay", path="/api/stock", delay=PAGE_DELAY, times=10_000))


@pytest.fixture
def background_worker(transactional_db: None, settings: Any) -> Iterator[Callable[[], None]]:
    """Start the task worker (`vxm db_worker --batch`) in the background; it is
    stopped (SIGTERM: the run ends interrupted at a page boundary) after the test."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "VXM_ENCRYPTION_KEYS": ",".join(settings.VXM_ENCRYPTION_KEYS),
        "VXM_ALLOW_LOCAL_ERP": "1",
        "VXM_NONSISTEMAS_PAGE_SIZE": str(PAGE_SIZE),
    }
    env.pop("VXM_TASK_BACKEND", None)
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vxm",
                    "db_worker",
                    "--queue-name",
                    "default,full",
                    "--batch",
                    "--no-startup-delay",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=60)


def bar_value(page: Any) -> int:
    return int(page.locator("#erp-progress progress").get_attribute("value") or 0)


def wait_for_bar_above(page: Any, value: int) -> int:
    """Wait (on the DOM, no sleeping) until the bar shows more than `value`."""
    page.wait_for_function(
        """(least) => {
            const bar = document.querySelector('#erp-progress progress');
            return bar && bar.hasAttribute('value') && Number(bar.getAttribute('value')) > least;
        }""",
        arg=value,
        timeout=60_000,
    )
    return bar_value(page)


def start_update_and_watch_it_move(
    page: Any,
    base_url: str,
    store: Store,
    admin: Any,
    start_worker: Callable[[], None],
    *,
    logged_in: bool = False,
) -> Run:
    from playwright.sync_api import expect

    if not logged_in:
        log_in(page, base_url, admin.email)
    page.goto(base_url + reverse("erp:integrations", args=[store.slug]))
    page.get_by_role("button", name="Actualizar stock y precios ahora").click()
    status = page.locator("#erp-status")
    expect(status).to_contain_text("Esperando a que empiece…")
    run = Run.objects.get(status=RunStatus.QUEUED)
    page.evaluate("window.__sameDocument = true")
    start_worker()
    first = wait_for_bar_above(page, 0)
    bar = page.locator("#erp-progress progress")
    expect(bar).to_have_attribute("max", str(ITEMS))
    expect(status).to_contain_text(re.compile(r"de 20\.000 ítems recibidos \(\d+ %\)"))
    expect(status).to_contain_text(re.compile(r"\d+ páginas?\s*·\s*van \d+"))
    # It moves, by the page's own polling: no reload.
    second = wait_for_bar_above(page, first)
    assert second > first
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    expect(status).to_contain_text("faltan unos")
    # The screen reader heard that it started (once; the region is not the polled box).
    expect(page.locator("#erp-live")).to_contain_text("NonSistemas")
    # Nothing else to press meanwhile.
    expect(page.get_by_role("button", name="Verificar conexión")).to_be_disabled()
    expect(page.get_by_role("button", name="Actualizar stock y precios ahora")).to_be_disabled()
    return run


def press_cancel(page: Any) -> None:
    from playwright.sync_api import expect

    page.locator("#erp-cancel summary", has_text="Cancelar actualización").click()
    confirm = page.locator("#erp-cancel form")
    expect(confirm).to_contain_text("lo ya aplicado queda")
    confirm.get_by_role("button", name="Sí, cancelarla").click()


def test_admin_watches_the_bar_move_on_a_computer_and_a_phone_and_cancels(
    page: Any,
    live_server: Any,
    admin_user: Any,
    store: Store,
    big_catalog: None,
    background_worker: Callable[[], None],
    screenshot: Callable[[str], Path],
) -> None:
    from playwright.sync_api import expect

    # A queued update is cancelled at once, before anything is read.
    log_in(page, live_server.url, admin_user.email)
    page.goto(live_server.url + reverse("erp:integrations", args=[store.slug]))
    page.get_by_role("button", name="Actualizar stock y precios ahora").click()
    expect(page.locator("#erp-status")).to_contain_text("Esperando a que empiece…")
    press_cancel(page)
    expect(page.locator(".messages")).to_contain_text("cancelada: todavía no había empezado")
    expect(page.locator("#erp-status")).to_contain_text(
        f"Cancelada por {admin_user.email} antes de empezar: no cambió nada."
    )
    expect(page.locator("#erp-status .badge")).to_have_text("Cancelada")
    expect(page.get_by_role("button", name="Actualizar stock y precios ahora")).to_be_enabled()
    screenshot("g1-01-cancelled-while-queued")

    run = start_update_and_watch_it_move(
        page, live_server.url, store, admin_user, background_worker, logged_in=True
    )
    screenshot("g1-02-progress-1280")

    # On a phone the bar and its figures fit the screen: nothing to scroll sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    moved = wait_for_bar_above(page, bar_value(page))
    assert moved > 0
    box = page.locator("#erp-progress progress").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot("g1-03-progress-390")

    # The run's own page follows it too, and is where this admin cancels it.
    page.locator("#erp-status").get_by_role("link", name=f"#{run.pk}").click()
    expect(page.get_by_role("heading", name=f"Actualización #{run.pk}")).to_be_visible()
    wait_for_bar_above(page, bar_value(page))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    press_cancel(page)
    expect(page.get_by_role("heading", name=f"Actualización #{run.pk}")).to_be_visible()
    expect(page.locator(".messages")).to_contain_text(f"Cancelando la actualización #{run.pk}")
    expect(page.locator("#erp-status")).to_contain_text("Cancelando…")
    expect(page.locator("#erp-cancel")).to_contain_text(
        f"Se pidió cancelar la actualización #{run.pk} ({admin_user.email})"
    )
    # Still polling: the page learns the end by itself.
    expect(page.locator("#erp-status")).to_have_attribute("hx-trigger", "every 2s")
    page.screenshot(path=str(SCREENS / "g1-04-cancelling-390.png"))  # the top: not 500 rows
    run.refresh_from_db()
    assert run.cancel_requested_at is not None


def test_a_cancelled_update_ends_cancelled_and_the_page_says_what_it_kept(
    page: Any,
    live_server: Any,
    admin_user: Any,
    store: Store,
    big_catalog: None,
    background_worker: Callable[[], None],
    screenshot: Callable[[str], Path],
) -> None:
    from playwright.sync_api import expect

    run = start_update_and_watch_it_move(
        page, live_server.url, store, admin_user, background_worker
    )
    press_cancel(page)
    status = page.locator("#erp-status")
    expect(status).to_contain_text("Cancelando…")
    expect(status.locator(".badge").first).to_have_text("Cancelada", timeout=60_000)
    expect(status).to_contain_text(
        re.compile(
            rf"Cancelada por {re.escape(admin_user.email)}: se aplicaron? \d+ páginas? completas?; "
            "la próxima actualización retoma desde el último punto seguro."
        )
    )
    expect(page.locator("#erp-live")).to_contain_text(f"La actualización #{run.pk} terminó")
    screenshot("g1-05-cancelled")
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and 0 < run.received < ITEMS
