"""Errors reach an English-speaking admin in English: a failed verification, the
settings form's URL checks, an error that wraps another, and the CLI (LANG). The
stored texts stay Spanish (old readers), with their msgid beside them."""

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from erp import stored_text
from erp.errors import ErpError, ErrorCode
from erp.models import Connection
from stores.models import Store
from tests.erp.sync_helpers import connect
from tests.test_language import login
from vxm.models import UserPreference

WRONG_PASSWORD_EN = (
    "The verification failed. NonSistemas rejected the API user or password. "
    "Check them and save them again."
)
WRONG_PASSWORD_ES = (
    "NonSistemas rechazó el usuario o la contraseña de la API. Revisalos y volvé a guardarlos."
)


def _client_in(language: str, user: Any) -> Client:
    UserPreference.objects.update_or_create(user=user, defaults={"language": language})
    client = Client()
    login(client, user)
    return client


def test_an_english_admin_sees_a_failed_verification_in_english(
    store: Store, admin_user: Any, standin: Any
) -> None:
    connection = connect(store, standin, password="not the password")
    client = _client_in("en", admin_user)
    page = client.post(reverse("erp:verify", args=[store.slug]), follow=True)
    assert page.status_code == 200
    assert WRONG_PASSWORD_EN in page.text
    assert "rechazó" not in page.text
    # Stored as before, in Spanish, with the msgid to show it in any language.
    connection.refresh_from_db()
    assert connection.last_check_ok is False
    assert connection.last_check_message == WRONG_PASSWORD_ES
    with translation.override("en"):
        assert stored_text.check_message(connection) == WRONG_PASSWORD_EN.removeprefix(
            "The verification failed. "
        )


def test_a_spanish_admin_still_sees_it_in_spanish(
    store: Store, admin_user: Any, standin: Any
) -> None:
    connect(store, standin, password="not the password")
    client = _client_in("es-ar", admin_user)
    page = client.post(reverse("erp:verify", args=[store.slug]), follow=True)
    assert f"La verificación falló. {WRONG_PASSWORD_ES}" in page.text


def test_the_settings_form_refuses_an_internal_address_in_english(
    store: Store, admin_user: Any, settings: Any
) -> None:
    settings.VXM_ALLOW_LOCAL_ERP = False
    client = _client_in("en", admin_user)
    page = client.post(
        reverse("erp:settings", args=[store.slug, "nonsistemas"]),
        {"url": "https://10.0.0.5/", "username": "api-ventas", "password": "s3cret-api"},
    )
    assert page.status_code == 200  # the form again, nothing saved
    assert "The address 10.0.0.5 belongs to an internal or reserved network." in page.text
    assert "pertenece a una red interna" not in page.text
    assert not Connection.objects.filter(store=store).exists()


def test_an_error_that_wraps_another_is_translated_whole_and_survives_json() -> None:
    cause = ErpError(
        ErrorCode.REFUSED,
        "Nadie responde en %(address)s: la conexión fue rechazada. Revisá la URL, el puerto "
        "y que el servidor de NonSistemas esté encendido.",
        params={"address": "erp.distribuidora-sur.com.ar:8443"},
    )
    error = ErpError(
        ErrorCode.REFUSED,
        "%(error)s Se intentó %(times)s veces.",
        params={"error": cause, "times": 3},
    )
    assert error.message == (
        "Nadie responde en erp.distribuidora-sur.com.ar:8443: la conexión fue rechazada. "
        "Revisá la URL, el puerto y que el servidor de NonSistemas esté encendido. "
        "Se intentó 3 veces."
    )
    stored = json.loads(json.dumps(error.packed))  # as a JSONField keeps it
    with translation.override("en"):
        assert stored_text.render(stored, error.message) == (
            "Nobody answers at erp.distribuidora-sur.com.ar:8443: the connection was refused. "
            "Check the URL, the port and that the NonSistemas server is on. Tried 3 times."
        )
    with translation.override("es-ar"):
        assert stored_text.render(stored, "") == error.message


def test_data_from_the_erp_is_shown_as_it_came_not_as_a_format() -> None:
    # A name with "%" and braces is data: never read as a placeholder.
    error = ErpError(
        ErrorCode.DNS,
        "El nombre «%(host)s» no existe. Revisá cómo está escrito el servidor en la URL.",
        params={"host": "erp-%(x)s-{y}.test"},
    )
    assert error.message.startswith("El nombre «erp-%(x)s-{y}.test» no existe.")
    with translation.override("en"):
        assert error.shown.startswith("The name “erp-%(x)s-{y}.test” does not exist.")


@pytest.mark.django_db(transaction=True)
def test_the_schedule_command_speaks_english_with_an_english_lang(
    tmp_path: Any, standin: Any
) -> None:
    from tests.erp.test_run_lifecycle import _store_for_a_worker

    env, vxm, _query = _store_for_a_worker(tmp_path, standin, LANG="en_US.UTF-8")
    env.pop("VXM_LANGUAGE", None)
    env.pop("LC_ALL", None)
    shown = vxm("erp", "schedule", "k").stdout
    assert "automatic updates off." in shown, shown
    saved = vxm("erp", "schedule", "k", "--every", "1h").stdout
    assert saved.startswith("k: automatic updates every hour."), saved
    shown = vxm("erp", "schedule", "k").stdout
    assert "automatic updates every hour." in shown, shown
    assert "Next: " in shown, shown
    refused = vxm("erp", "schedule", "k", "--every", "2h", check=False)
    assert refused.returncode != 0
    assert "“2h” is not a valid frequency: use 15m, 30m, 1h, 6h or 24h." in refused.stderr
    for output in (shown, saved, refused.stderr):
        assert "actualizaciones" not in output and "Próxima" not in output, output
