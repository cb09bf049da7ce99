"""Every page of the product passes axe-core with no serious or critical violation
(issue #12, item 6), at 1280 px and at 390 px, in Debian's Chromium.

axe-core comes with the `axe-playwright-python` package (PyPI, in
requirements.lock): nothing is downloaded at test time. The pages are filled with
the widest real-store data of the phone-layout test (its `shop` fixture) and shown
in each state an admin meets: empty and filled, with form errors, a run running,
finished, failed, the error pages.

To check a new page, add a `Screen` to SCREENS (a URL made from the ids below, the
text that proves the page is in the state meant, and, if it takes a click to get
there, a `prepare` function). Pages answered with an error status are opened in a
tab of their own (the `page` fixture takes any 4xx/5xx for a fault).

Every violation found is listed at the end, by page and width, with the rule, its
impact, axe's help text and the first elements involved.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from erp.models import ErpKind, Run, RunStatus
from stores.models import Membership, Store
from tests.browser.conftest import SCREENS
from tests.browser.test_phone_layout import (  # noqa: F401 (`shop` is a fixture)
    DESKTOP,
    LONG_NAME,
    LONG_SKU,
    PHONE,
    shop,
)
from tests.conftest import TEST_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the check fails on. "moderate" and "minor" findings are printed, not failed.
FAILING_IMPACTS = {"serious", "critical"}


@dataclass(frozen=True)
class Screen:
    """One page in one state. `path` is formatted with the ids of `ids` below
    ({store}, {other}, {item}, {run}, {failed_run}, {running_run}, {import})."""

    name: str
    path: str
    shows: str  # a text on the page that says it is the state meant
    prepare: Callable[[Any, dict[str, Any]], None] | None = None
    status: int = 200


def _settings_with_errors(page: Any, ids: dict[str, Any]) -> None:
    page.get_by_label("URL").fill("ftp//nonsistemas")
    page.get_by_role("button", name="Guardar").click()


def _item_with_errors(page: Any, ids: dict[str, Any]) -> None:
    page.get_by_label("Stock", exact=True).fill("muchos")
    page.get_by_role("button", name="Guardar", exact=True).click()


def _refused_import(page: Any, ids: dict[str, Any]) -> None:
    bad = ids["tmp_path"] / "lista-de-precios-ferretería.csv"
    bad.write_text(
        f"sku,name,stock,wholesale_price\n{LONG_SKU},{LONG_NAME},10,999999999.99\n",
        encoding="utf-8",
    )
    page.get_by_label("Archivo CSV").set_input_files(str(bad))
    page.get_by_role("button", name="Importar").click()


def _csrf_refused(page: Any, ids: dict[str, Any]) -> None:
    # A form sent after its CSRF cookie is gone (another tab logged out, the
    # browser cleared cookies): Django refuses it with the product's 403 page.
    page.context.clear_cookies(name="csrftoken")
    page.get_by_role("button", name="Guardar", exact=True).click()


CATALOG = "/s/{store}/catalog/"
ERP = "/s/{store}/integrations/erp/"

SCREENS_CHECKED: list[Screen] = [
    Screen("home: the store chooser", "/", "Tus tiendas"),
    Screen("catalog", CATALOG, "Stock y precios de NonSistemas"),
    Screen("catalog: search", CATALOG + "?q=tornillo", "Tornillo autoperforante"),
    Screen("catalog: low stock", CATALOG + "?stock=low", "BUL-0003"),
    Screen("catalog: nothing found", CATALOG + "?q=zzzz-nada", "No encontramos productos"),
    Screen("catalog: ambiguous SKUs", CATALOG + "?sku=ambiguous", "difieren sólo en mayúsculas"),
    Screen("item", CATALOG + "items/{item}/", "Historial"),
    Screen("item: form errors", CATALOG + "items/{item}/", "Historial", _item_with_errors),
    Screen("import", CATALOG + "import/", "Importar catálogo desde CSV"),
    Screen("import: refused file", CATALOG + "import/", "No se importó nada", _refused_import),
    Screen("import: its report", CATALOG + "imports/{import}/", "Resultado"),
    Screen("ERP: not connected", "/s/{other}/integrations/erp/", "No conectado"),
    Screen(
        "ERP settings: errors",
        "/s/{other}/integrations/erp/settings/nonsistemas/",
        "Configuración de NonSistemas",
        _settings_with_errors,
    ),
    Screen("ERP: connected", ERP, "La integración de un vistazo"),
    Screen("ERP settings", ERP + "settings/nonsistemas/", "Configuración de NonSistemas"),
    Screen("run: with issues", ERP + "runs/{run}/", "No aplicados"),
    Screen("run: issues of one kind", ERP + "runs/{run}/?kind=unmatched", "No aplicados"),
    Screen("runs history", ERP + "runs/", "Historial de actualizaciones"),
    Screen("run: failed", ERP + "runs/{failed_run}/", "Falló"),
    Screen("ERP: last update failed", ERP, "Última falla"),
    Screen("run: running", ERP + "runs/{running_run}/", "En curso"),
    Screen("ERP: a run running", ERP, "En curso"),
    # Error pages: each in a tab of its own (see the module's docstring).
    Screen("404", CATALOG + "items/999999/", "No encontramos esta página", status=404),
    Screen("403", "/test-forbidden/", "No tenés permiso", status=403),
    Screen("500", "/test-crash/", "Algo falló de nuestro lado", status=500),
    Screen(
        "403: CSRF", CATALOG + "items/{item}/", "El formulario venció", _csrf_refused, status=403
    ),
]


def violations(page: Any) -> list[dict[str, Any]]:
    from axe_playwright_python.sync_playwright import Axe

    return list(Axe().run(page).response["violations"])


def describe(where: str, found: list[dict[str, Any]]) -> list[str]:
    lines = []
    for v in found:
        targets = [", ".join(node["target"]) for node in v["nodes"][:3]]
        lines.append(f"{where}: [{v['impact']}] {v['id']}: {v['help']} → {targets}")
    return lines


@pytest.mark.urls("tests.browser.a11y_urls")
def test_every_page_has_no_serious_or_critical_accessibility_violation(
    page: Any,
    live_server: Any,
    admin_user: Any,
    store: Store,
    shop: dict[str, int],  # noqa: F811
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    failing: list[str] = []
    minor: list[str] = []
    checked = 0

    def check(tab: Any, name: str) -> None:
        nonlocal checked
        for label, size in (("1280", DESKTOP), ("390", PHONE)):
            tab.set_viewport_size(size)
            found = violations(tab)
            failing.extend(
                describe(f"{name} @{label}", [v for v in found if v["impact"] in FAILING_IMPACTS])
            )
            minor.extend(
                describe(
                    f"{name} @{label}", [v for v in found if v["impact"] not in FAILING_IMPACTS]
                )
            )
            slug = "".join(c if c.isalnum() else "-" for c in name)
            tab.screenshot(path=str(SCREENS / f"a11y-{slug}-{label}.png"), full_page=True)
            checked += 1

    SCREENS.mkdir(parents=True, exist_ok=True)
    # ---- the login page, anonymous, empty and with its error ---------------------------
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", name="Ingresar")).to_be_visible()
    check(page, "login")
    page.get_by_label("Email").fill(admin_user.email)
    page.get_by_label("Contraseña").fill("no-es-la-clave")
    page.get_by_role("button", name="Ingresar").click()
    expect(page.locator(".errorlist, [role=alert]").first).to_be_visible()
    check(page, "login: wrong password")

    # A second store, not connected: the home page becomes the store chooser.
    other = Store.objects.create(name="Mayorista Ñandú Patagónica", slug="nandu")
    Membership.objects.create(store=other, user=admin_user)
    page.goto(live_server.url + "/")
    page.get_by_label("Email").fill(admin_user.email)
    page.get_by_label("Contraseña").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Ingresar").click()
    expect(page.get_by_role("heading", name="Tus tiendas")).to_be_visible()

    now = timezone.now()
    ids: dict[str, Any] = {
        "store": store.slug,
        "other": other.slug,
        "item": shop["item"],
        "run": shop["run"],
        "import": shop["import"],
        "tmp_path": tmp_path,
    }
    errors_tab = None
    for screen in SCREENS_CHECKED:
        # The states of runs are made just before the pages that show them.
        if "failed_run" not in ids and (
            "{failed_run}" in screen.path or screen.name == "ERP: last update failed"
        ):
            ids["failed_run"] = Run.objects.create(
                store=store,
                kind=ErpKind.NONSISTEMAS,
                status=RunStatus.FAILED,
                requested_by=admin_user,
                started_at=now,
                finished_at=now + timedelta(seconds=5),
                error_message=(
                    "NonSistemas rechazó el usuario o la contraseña: revisalos en la configuración."
                ),
                error_code="auth",
            ).pk
        if "running_run" not in ids and (
            "{running_run}" in screen.path or screen.name == "ERP: a run running"
        ):
            ids["running_run"] = Run.objects.create(
                store=store,
                kind=ErpKind.NONSISTEMAS,
                status=RunStatus.RUNNING,
                requested_by=admin_user,
                started_at=timezone.now(),
                heartbeat_at=timezone.now() + timedelta(minutes=10),
                received=12_345,
                matched=12_000,
            ).pk
        url = live_server.url + screen.path.format(**ids)
        if screen.status == 200:
            tab = page
        else:
            errors_tab = errors_tab or page.context.new_page()
            tab = errors_tab
        response = tab.goto(url)
        if screen.prepare is not None:
            screen.prepare(tab, ids)
        else:
            assert response is not None and response.status == screen.status, screen.name
        if screen.shows:
            expect(tab.get_by_text(screen.shows).first).to_be_visible()
        check(tab, screen.name)

    print("\n".join(["Moderate or minor findings (not failed):", *minor]))
    assert checked == 2 * (len(SCREENS_CHECKED) + 2)
    assert not failing, "axe-core found serious or critical violations:\n" + "\n".join(failing)
