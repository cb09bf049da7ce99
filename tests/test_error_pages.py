"""The error pages are the product's: Spanish, its look, and what to do next.

Django's defaults are English one-liners ("Not Found", "CSRF verification
failed", "Server Error (500)") with no way back; a store admin who meets one must
instead read what happened and what to do, in the product's frame.
"""

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.views.defaults import server_error

from catalog.models import Item
from stores.models import Store
from tests.erp.sync_helpers import make_items
from tests.erp.test_pages import text

# What Django writes when the product has no page of its own.
DJANGO_DEFAULTS = (
    "Not Found",
    "The requested resource was not found",
    "Forbidden",
    "CSRF verification failed",
    "Server Error",
    "Bad Request",
    "Request aborted",
)
STYLESHEET = "/static/vxm/vxm.css"


def assert_product_page(response: Any, status: int) -> str:
    assert response.status_code == status
    body = response.content.decode()
    for english in DJANGO_DEFAULTS:
        assert english not in body, english
    assert '<html lang="es-ar">' in body
    assert STYLESHEET in body  # the product's look
    assert 'class="brand"' in body  # and its header
    return text(response)


@pytest.mark.parametrize("logged_in", [True, False])
def test_unknown_address_is_the_products_404(logged_in, client, admin_client):
    response = (admin_client if logged_in else client).get("/no-existe/")
    page = assert_product_page(response, 404)
    assert "No encontramos esta página" in page
    assert "Revisá la dirección, o volvé al inicio" in page
    assert 'href="/"' in response.content.decode()


def test_another_stores_item_is_the_same_404(admin_client, store, other_store):
    make_items(other_store, [("NOR-1", 1, "1.00")])
    make_items(store, [("SUR-1", 1, "1.00")])
    theirs = Item.objects.get(store=other_store)
    for path in (
        # Their store's URL, and their item under our store's URL.
        reverse("catalog:item", args=[other_store.slug, theirs.pk]),
        reverse("catalog:item", args=[store.slug, theirs.pk]),
    ):
        page = assert_product_page(admin_client.get(path), 404)
        assert "No encontramos esta página" in page
        # Nothing says the item exists elsewhere.
        assert "NOR-1" not in page and other_store.name not in page


@pytest.fixture
def strict_client(admin_user: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    return client


def test_a_form_refused_by_csrf_says_nothing_was_saved_and_how_to_retry(
    strict_client, store, admin_user
):
    form_page = "http://testserver" + reverse("catalog:import", args=[store.slug])
    response = strict_client.post(
        reverse("erp:verify", args=[store.slug]), headers={"referer": form_page}
    )
    page = assert_product_page(response, 403)
    assert "El formulario venció" in page
    assert "No se guardó nada." in page
    assert "Volvé a cargar el formulario, revisá los datos y envialo de nuevo." in page
    # A way back to the form, and the user is still shown as logged in.
    assert f'href="{form_page}"' in response.content.decode()
    assert "Volver al formulario" in page
    assert admin_user.email in page
    assert "Ingresar de nuevo" not in page


def test_csrf_page_never_links_to_another_site(strict_client, store):
    response = strict_client.post(
        reverse("erp:verify", args=[store.slug]),
        headers={"referer": "https://evil.example/phish"},
    )
    assert_product_page(response, 403)
    assert "evil.example" not in response.content.decode()
    assert "Ir al inicio" in text(response)


def test_csrf_failure_after_logging_out_offers_to_log_in_again(db):
    # A login form posted without the cookie (logged out in another tab, cookies off).
    response = Client(enforce_csrf_checks=True).post(
        reverse("login"), {"username": "a@b.test", "password": "x"}
    )
    page = assert_product_page(response, 403)
    assert "ingresá otra vez primero" in page
    assert "habilitalas" in page  # no CSRF cookie at all: says so
    assert re.search(r'href="/login/"[^>]*>Ingresar de nuevo', response.content.decode())


@pytest.mark.urls("tests.error_urls")
def test_a_crash_is_the_products_500_and_needs_no_database(
    client, admin_client, django_assert_num_queries
):
    crashing = Client(raise_request_exception=False)
    with django_assert_num_queries(0):
        response = crashing.get("/test-crash/")
    page = assert_product_page(response, 500)
    assert "Algo falló de nuestro lado" in page
    assert "recargala para ver si el cambio quedó antes de repetirlo" in page
    assert "a bug of ours" not in page and "Traceback" not in page

    # Logged in: still nothing personal or from the database in it.
    admin_client.raise_request_exception = False
    response = admin_client.get("/test-crash/")
    page = assert_product_page(response, 500)
    assert "admin@sur.test" not in page


def test_the_500_page_renders_from_no_context_at_all(rf):
    # What Django does when everything else failed: the template, no request
    # context. This test has no database access: a query would raise.
    response = server_error(rf.get("/"))
    assert_product_page(response, 500)


@pytest.mark.urls("tests.error_urls")
def test_a_nonsensical_request_is_the_products_400(db):
    response = Client(raise_request_exception=False).get("/test-suspicious/")
    page = assert_product_page(response, 400)
    assert "No pudimos entender la solicitud" in page


def test_a_store_admin_error_page_keeps_the_store_header(admin_client, store: Store):
    # An unknown item of the admin's own store: the menu is there to go on.
    response = admin_client.get(reverse("catalog:item", args=[store.slug, 999999]))
    page = assert_product_page(response, 404)
    assert "Catálogo" in page and "Integraciones \u203a ERP" in page
