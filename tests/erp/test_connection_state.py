"""The ERP card says whether the saved settings work now, as far as anyone last
found out: a verification, the settings being saved, or the last update,
whichever is newest. Issue 9: after a failed verification it still said
"Conectado" because it only looked at the last update."""

import re
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from erp.engine import execute_run
from erp.models import Connection, Run
from stores.models import Store
from tests.conftest import ERP_PASSWORD, ERP_USER
from tests.erp.sync_helpers import connect, make_items, sync
from tests.erp.test_pages import HTMX, erp_item, save_settings, text, url


def card(client: Any, store: Store) -> str:
    """The ERP card of the integrations page, as read."""
    page = text(client.get(url("integrations", store)))
    return page[page.index("ERP de la tienda") : page.index("Conexión y actualización")]


@pytest.fixture
def connected(store: Store, standin: Any) -> Connection:
    return connect(store, standin)


@pytest.fixture
def updated_once(store: Store, standin: Any) -> Connection:
    connection = connect(store, standin)
    make_items(store, [("ÁGUILA-1", 1, "10.00")])
    standin.load([erp_item(standin, "águila-1", "3.000", "10.00")])
    assert sync(store).status == "succeeded"
    return connection


def test_a_good_update_then_a_failed_verification_says_it_fails_now(
    admin_client, store, standin, updated_once
):
    assert "Conectado" in card(admin_client, store)
    # The ERP's administrator changes the API user's password.
    standin.add_user(ERP_USER, "otra-clave")
    admin_client.post(url("verify", store))

    shown = card(admin_client, store)
    assert "Verificación fallida" in shown
    assert "Conectado" not in shown
    assert "rechazó el usuario o la contraseña" in shown  # its message
    assert "Cuando lo corrijas, probá de nuevo con «Verificar conexión»." in shown  # what to do
    assert "Última actualización terminada" in shown  # the last update is still told


def test_a_good_verification_says_so_with_the_version(admin_client, store, connected):
    assert "Sin verificar" in card(admin_client, store)
    admin_client.post(url("verify", store))
    shown = card(admin_client, store)
    assert "Conectado" in shown
    assert "La conexión funciona: NonSistemas 4.3.1." in shown and "Verificada el" in shown
    assert "Todavía sin ninguna actualización terminada." in shown


def test_new_settings_are_untried_whatever_worked_before(admin_client, store, standin, connected):
    admin_client.post(url("verify", store))
    assert "Conectado" in card(admin_client, store)
    response = save_settings(
        admin_client, store, url=standin.url, username="otro-usuario", password="otra"
    )
    assert response.status_code == 302
    shown = card(admin_client, store)
    assert "Sin verificar" in shown and "Conectado" not in shown
    assert re.search(
        r"Esta configuración \(guardada el [\d/]+ [\d:]+\) todavía no se probó\.", shown
    )
    assert "Probala con «Verificar conexión»" in shown


def test_saving_the_same_settings_keeps_what_was_found(admin_client, store, standin):
    save_settings(admin_client, store, url=standin.url, username=ERP_USER, password=ERP_PASSWORD)
    admin_client.post(url("verify", store))
    # The same server and user, the password left blank (kept): nothing to re-try.
    save_settings(admin_client, store, url=standin.url, username=ERP_USER, password="")
    assert "Conectado" in card(admin_client, store)


def test_the_newest_wins_a_good_update_after_a_failed_verification(
    admin_client, store, standin, connected
):
    standin.add_user(ERP_USER, "otra-clave")
    admin_client.post(url("verify", store))
    assert "Verificación fallida" in card(admin_client, store)
    standin.add_user(ERP_USER, ERP_PASSWORD)  # fixed on the ERP's side
    assert sync(store).status == "succeeded"
    shown = card(admin_client, store)
    assert "Conectado" in shown and "Verificación fallida" not in shown


def test_the_command_line_verification_counts_too(admin_client, store, standin, connected):
    standin.add_user(ERP_USER, "otra-clave")
    with pytest.raises(CommandError, match="rechazó el usuario"):
        call_command("erp", "verify", store.slug)
    assert "Verificación fallida" in card(admin_client, store)


def test_a_verification_of_settings_changed_meanwhile_is_not_recorded(store, standin, connected):
    # The verification read the settings, then someone saved another server.
    read = Connection.objects.get(pk=connected.pk)
    Connection.objects.filter(pk=connected.pk).update(url="https://otro.example.com/")
    read.record_check(ok=True, message="La conexión funciona: NonSistemas 4.3.1.")
    connected.refresh_from_db()
    assert connected.last_check_ok is None and connected.last_check_at is None


# ---- Verify and Update while a run is going ---------------------------------------------


def buttons(page: str) -> dict[str, bool]:
    """Button label → disabled, for the two buttons of the integrations page."""
    found = {}
    for attributes, label in re.findall(r"<button([^>]*)>([^<]+)</button>", page):
        if label in {"Verificar conexión", "Actualizar stock y precios ahora"}:
            found[label] = "disabled" in attributes
    return found


def test_buttons_are_disabled_with_the_reason_while_a_run_is_queued(
    admin_client, store, connected, django_capture_on_commit_callbacks
):
    page = admin_client.get(url("integrations", store)).content.decode()
    assert buttons(page) == {"Verificar conexión": False, "Actualizar stock y precios ahora": False}

    # The database queue with no worker: the run stays queued.
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url("update", store))
    run = Run.objects.get(store=store)
    response = admin_client.get(url("integrations", store))
    page = response.content.decode()
    assert buttons(page) == {"Verificar conexión": True, "Actualizar stock y precios ahora": True}
    busy = page[page.index('id="erp-busy"') : page.index("</p>", page.index('id="erp-busy"'))]
    assert "Hay una actualización en curso" in busy and url("run", store, run.pk) in busy
    assert 'name="full" disabled' in page

    # A poll while it runs leaves the buttons alone (a swap would reset the checkbox).
    poll = admin_client.get(url("status", store), headers=HTMX).content.decode()
    assert "erp-actions" not in poll

    execute_run(run.pk)  # what the worker does
    poll = admin_client.get(url("status", store), headers=HTMX).content.decode()
    assert 'id="erp-actions" hx-swap-oob="true"' in poll
    assert buttons(poll) == {"Verificar conexión": False, "Actualizar stock y precios ahora": False}
    assert "Hay una actualización en curso" not in poll
