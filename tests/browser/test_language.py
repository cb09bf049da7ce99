"""A store admin switches the panel to English in Chromium: the catalog and the
ERP pages speak English, prices are written the English way, and the choice
follows the account to a browser that asks for Spanish."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stores.models import Store
from tests.browser.conftest import log_in
from tests.conftest import TEST_PASSWORD
from tests.erp.sync_helpers import connect, make_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_switches_to_english_and_it_stays_on_the_account(
    page: Any,
    live_server: Any,
    admin_user: Any,
    store: Store,
    standin: Any,
    screenshot: Callable[[str], Path],
) -> None:
    from playwright.sync_api import expect

    make_items(store, [("OIL-0001", 1500, "1234.56")], names={"OIL-0001": "Sunflower oil"})
    connect(store, standin)
    log_in(page, live_server.url, admin_user.email)  # in Spanish: the browser is es-AR
    expect(page.locator("td[data-label='Precio mayorista']")).to_have_text("$ 1.234,56")

    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("td[data-label='Wholesale price']")).to_have_text("$1,234.56")
    expect(page.locator("td[data-label='Stock']")).to_contain_text("1,500")
    expect(page.get_by_role("button", name="Search")).to_be_visible()
    expect(page.get_by_role("button", name="Español de Argentina")).to_be_visible()
    screenshot("lang-01-catalog-en-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot("lang-02-catalog-en-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="OIL-0001").click()
    expect(page.get_by_role("heading", name="Change stock or price")).to_be_visible()
    expect(page.get_by_label("Wholesale price")).to_be_visible()

    page.get_by_role("link", name="Integrations \u203a ERP").click()
    expect(page.get_by_role("heading", name="Integrations \u203a ERP")).to_be_visible()
    expect(page.get_by_role("button", name="Verify connection")).to_be_visible()
    expect(page.get_by_role("button", name="Update stock and prices now")).to_be_visible()
    expect(page.get_by_text("Orders are NOT synchronized.")).to_be_visible()
    screenshot("lang-03-erp-en-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot("lang-04-erp-en-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Another browser (no cookies at all, asking for Spanish): the login page is
    # Spanish, and once logged in the account's English wins.
    page.context.clear_cookies()
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", name="Ingresar")).to_be_visible()
    page.get_by_label("Email").fill(admin_user.email)
    page.get_by_label("Contraseña").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Ingresar").click()
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible()

    # Logged out, this browser now remembers English for the login page.
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    screenshot("lang-05-login-en-390")
