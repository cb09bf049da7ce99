"""The store admin's ERP pages, end to end: Django test client → views → engine →
NonSistemas stand-in over real HTTP.

Assertions are about what the admin sees (texts, badges, links, downloads) and
what the store's catalog ends up holding.
"""

import csv
import html
import io
import json
import logging
import re
import socket
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.views.debug import ExceptionReporter

from catalog.models import ChangeSource, Item, ItemChange
from erp import views
from erp.engine import execute_run, request_update
from erp.models import AuditAction, AuditEvent, Connection, IssueKind, Run, RunIssue, RunStatus
from nonsistemas_standin import Fault
from stores.models import Membership, Store
from tests.conftest import ERP_PASSWORD, ERP_USER, TEST_PASSWORD
from tests.erp.sync_helpers import connect, make_items
from vxm.spreadsheets import XLSX_CONTENT_TYPE as XLSX

IMMEDIATE = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
HTMX = {"HX-Request": "true"}
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


# ---- helpers --------------------------------------------------------------------------


def url(name: str, store: Store, *args: Any) -> str:
    return reverse(f"erp:{name}", args=[store.slug, *args])


def text(response: Any) -> str:
    """The page as a reader sees it: tags dropped, whitespace collapsed."""
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    # Thousands are separated by a no-break space in Spanish ("18 250,00").
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).replace("\xa0", " ").split())


def shown_messages(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def yesterday(standin: Any) -> str:
    # Items last modified well before the run: the next incremental run, which
    # asks for changes since a little before the first run, does not see them.
    return (standin.now() - timedelta(days=1)).isoformat(timespec="seconds")


def erp_item(
    standin: Any, codigo: str, stock: str, price: str | None, **extra: Any
) -> dict[str, Any]:
    return {
        "codigo": codigo,
        "descripcion": f"Descripción de {codigo.strip()}",
        "stock": stock,
        "precio_mayorista": price,
        "moneda": "ARS",
        "activo": True,
        "modificado": yesterday(standin),
        **extra,
    }


def serve_price_as(standin: Any, codigo: str, raw_price: str) -> None:
    """Make the stand-in send `precio_mayorista` as an arbitrary string for one item.

    The stand-in's load() validates prices as numbers, so a garbled one ("abc")
    cannot be loaded; it serves each item from a cached JSON encoding, which we
    replace. (A stand-in feature for this would be cleaner: see the report.)
    """
    instance = standin._instance
    with instance.lock:
        item = instance.catalog._items[codigo]
        data = json.loads(instance.catalog._encoded(codigo))
        data["precio_mayorista"] = raw_price
        item.encoded = json.dumps(data, ensure_ascii=False).encode()


@pytest.fixture
def immediate_tasks(settings: Any) -> None:
    settings.TASKS = IMMEDIATE


@pytest.fixture
def connected(store: Store, standin: Any) -> Connection:
    return connect(store, standin)


def press_update(
    client: Client, store: Store, capture: Any, *, full: bool = False, execute: bool = True
) -> Any:
    """Press "Actualizar stock y precios ahora"; the background task runs on commit."""
    with capture(execute=execute):
        return client.post(url("update", store), {"full": "on"} if full else {}, follow=True)


def save_settings(client: Client, store: Store, **data: str) -> Any:
    return client.post(url("settings", store, "nonsistemas"), data)


# ---- the integrations page ------------------------------------------------------------


def test_integrations_page_lists_the_erps_and_says_orders_are_not_synced(admin_client, store):
    response = admin_client.get(url("integrations", store))
    assert response.status_code == 200
    page = text(response)
    assert "NonSistemas" in page  # from the registry, not from the template
    assert "No conectado" in page
    assert "Conectar" in page
    assert "Los pedidos NO se sincronizan" in page
    assert "Cargalos a mano en tu ERP" in page
    # Nothing to verify or update before there is a connection.
    assert "Verificar conexión" not in page


def test_connected_store_never_synced(admin_client, store, connected):
    page = text(admin_client.get(url("integrations", store)))
    assert "Sin verificar" in page and "Esta configuración todavía no se probó." in page
    assert "Todavía sin ninguna actualización terminada." in page
    assert connected.url in page and ERP_USER in page
    assert "Verificar conexión" in page
    assert "Actualizar stock y precios ahora" in page
    assert ERP_PASSWORD not in page


def test_unreadable_stored_password_needs_attention_without_crashing(
    admin_client, store, connected
):
    # Encrypted with a key the server no longer has (a rotation gone wrong).
    connected.password_encrypted = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    connected.save()
    response = admin_client.get(url("integrations", store))
    assert response.status_code == 200
    page = text(response)
    assert "Necesita atención" in page
    assert "La contraseña guardada no se puede leer" in page

    # The settings form then insists on the password, even for the same server.
    response = save_settings(admin_client, store, url=connected.url, username=ERP_USER, password="")
    assert "no se puede leer" in " ".join(response.context["form"].errors["password"])


# ---- the settings form ----------------------------------------------------------------


def test_settings_form_errors_per_field(admin_client, store):
    response = save_settings(admin_client, store, url="", username="", password="")
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"url", "username", "password"}
    assert errors["password"] == ["Escribí la contraseña."]
    assert not Connection.objects.exists()

    response = save_settings(
        admin_client, store, url="ftp://erp.example.com", username="u", password="p"
    )
    errors = response.context["form"].errors
    assert set(errors) == {"url"}
    assert errors["url"][0] in text(response)  # url_guard's message, shown by the field
    assert not Connection.objects.exists()


@pytest.mark.parametrize(
    "hostile",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://user:pass@erp.example.com/",
        "https://erp.example.com:22/",
        "file:///etc/passwd",
    ],
)
def test_settings_form_refuses_urls_the_server_must_not_call(
    admin_client, store, settings, hostile
):
    settings.VXM_ALLOW_LOCAL_ERP = False  # as in production
    response = save_settings(admin_client, store, url=hostile, username="u", password="p")
    assert "url" in response.context["form"].errors
    assert not Connection.objects.exists()


def test_settings_saved_encrypted_audited_and_never_rendered(admin_client, store, standin):
    response = save_settings(
        admin_client, store, url=standin.url, username=ERP_USER, password=ERP_PASSWORD
    )
    assert response.status_code == 302
    connection = Connection.objects.get(store=store)
    assert connection.url == standin.url + "/"  # normalized by url_guard
    assert connection.username == ERP_USER
    assert ERP_PASSWORD not in connection.password_encrypted
    assert connection.get_password() == ERP_PASSWORD

    event = AuditEvent.objects.get(store=store, action=AuditAction.CONFIGURED)
    assert event.user is not None and event.user.email == "admin@sur.test"
    assert connection.url in event.detail and ERP_USER in event.detail
    assert ERP_PASSWORD not in event.detail

    form_page = admin_client.get(url("settings", store, "nonsistemas"))
    body = form_page.content.decode()
    assert ERP_PASSWORD not in body
    assert 'type="password"' in body and connection.url in body
    assert "pueden no servir" in text(form_page)  # web-panel vs API credentials

    page = admin_client.get(url("integrations", store))
    assert "Cambió la configuración" in text(page) and "admin@sur.test" in text(page)
    assert ERP_PASSWORD not in page.content.decode()


def error_report(record: logging.LogRecord) -> ExceptionReporter:
    """The report Django e-mails to the admins for a logged request error."""
    assert record.exc_info is not None
    etype, value, tb = record.exc_info
    return ExceptionReporter(record.request, etype, value, tb, is_email=True)  # type: ignore[attr-defined]


def test_a_crash_while_saving_keeps_the_password_out_of_the_error_report(
    admin_user, store, standin, monkeypatch, caplog
):
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("the audit table is gone")

    monkeypatch.setattr(AuditEvent.objects, "create", broken)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.post(
            url("settings", store, "nonsistemas"),
            {"url": standin.url, "username": ERP_USER, "password": ERP_PASSWORD},
        )
    assert response.status_code == 500
    assert not Connection.objects.exists()  # the write rolled back with its audit row
    # The report Django e-mails to the admins (AdminEmailHandler): the POST
    # parameters and every frame's local variables.
    [record] = [r for r in caplog.records if r.exc_info]
    report = error_report(record)
    for body in (report.get_traceback_text(), report.get_traceback_html(), record.getMessage()):
        assert "the audit table is gone" in body or body == record.getMessage()
        assert ERP_PASSWORD not in body


def test_a_missing_encryption_key_keeps_the_password_out_of_the_error_report(
    admin_user, store, standin, settings, caplog
):
    settings.VXM_ENCRYPTION_KEYS = []
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.post(
            url("settings", store, "nonsistemas"),
            {"url": standin.url, "username": ERP_USER, "password": ERP_PASSWORD},
        )
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.exc_info]
    report = error_report(record)
    assert "VXM_ENCRYPTION_KEYS" in report.get_traceback_text()
    # The HTML form (AdminEmailHandler(include_html=True), Sentry-like reporters)
    # lists each frame's variables: encrypt()'s `plaintext` among them.
    for body in (report.get_traceback_text(), report.get_traceback_html()):
        assert ERP_PASSWORD not in body


def test_password_is_not_rendered_back_after_an_error(admin_client, store):
    response = save_settings(
        admin_client, store, url="not a url", username="u", password=ERP_PASSWORD
    )
    assert response.context["form"].errors["url"]
    assert ERP_PASSWORD not in response.content.decode()


def test_blank_password_keeps_the_stored_one(admin_client, store, connected):
    response = save_settings(
        admin_client, store, url=connected.url, username="otro-usuario", password=""
    )
    assert response.status_code == 302
    connected.refresh_from_db()
    assert connected.username == "otro-usuario"
    assert connected.get_password() == ERP_PASSWORD
    assert "misma contraseña" in AuditEvent.objects.get(action=AuditAction.CONFIGURED).detail


def test_changing_the_host_requires_the_password_again(admin_client, store, connected):
    connected.watermark = timezone.now()
    connected.save()
    other = connected.url.replace("127.0.0.1", "localhost")
    response = save_settings(admin_client, store, url=other, username=ERP_USER, password="")
    assert response.status_code == 200
    [error] = response.context["form"].errors["password"]
    assert "Cambiaste el servidor de la URL" in error and "escribí la contraseña" in error
    assert set(response.context["form"].errors) == {"password"}
    connected.refresh_from_db()
    assert "127.0.0.1" in connected.url  # nothing saved

    response = save_settings(admin_client, store, url=other, username=ERP_USER, password="nueva")
    assert response.status_code == 302
    connected.refresh_from_db()
    assert "localhost" in connected.url and connected.get_password() == "nueva"
    # Another server's clock: the next update reads everything.
    assert connected.watermark is None


def test_changing_only_the_port_also_requires_the_password(admin_client, store, connected):
    other = re.sub(r":\d+", ":1", connected.url)
    response = save_settings(admin_client, store, url=other, username=ERP_USER, password="")
    assert "password" in response.context["form"].errors


# ---- verify ---------------------------------------------------------------------------


def test_verify_success_shows_the_version(admin_client, store, connected):
    response = admin_client.post(url("verify", store), follow=True)
    assert shown_messages(response) == [("success", "La conexión funciona: NonSistemas 4.3.1.")]
    event = AuditEvent.objects.get(store=store, action=AuditAction.VERIFIED)
    assert event.detail == "Correcta: NonSistemas 4.3.1"
    assert "Verificó la conexión" in text(response)
    # Verify changes nothing else.
    assert not Run.objects.exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong_password", "rechazó el usuario o la contraseña"),
        ("no_api_access", "no tiene habilitado el acceso a la API"),
        ("not_nonsistemas", "no es una API de NonSistemas"),
        ("nothing_listening", "Nadie responde"),
    ],
)
def test_verify_failures_name_the_problem(admin_client, store, standin, case, expected):
    if case == "wrong_password":
        connect(store, standin, password="incorrecta")
    elif case == "no_api_access":
        standin.add_user("panel-web", "clave-panel", api_access=False)
        connect(store, standin, username="panel-web", password="clave-panel")
    elif case == "not_nonsistemas":
        standin.inject(Fault("not_nonsistemas", path="/api/version"))
        connect(store, standin)
    else:
        connection = connect(store, standin)
        connection.url = f"http://127.0.0.1:{_closed_port()}/"
        connection.save()
    response = admin_client.post(url("verify", store), follow=True)
    [(level, message)] = shown_messages(response)
    assert level == "error"
    assert expected in message
    assert message.startswith("La verificación falló.")
    event = AuditEvent.objects.get(store=store, action=AuditAction.VERIFIED)
    assert event.detail.startswith("Falló:") and expected in event.detail
    assert "clave-panel" not in response.content.decode()
    assert "incorrecta" not in response.content.decode()


def test_verify_is_rate_limited_per_store(admin_client, store, connected):
    for _ in range(4):
        admin_client.post(url("verify", store), follow=True)
    response = admin_client.post(url("verify", store), follow=True)
    [(level, message)] = shown_messages(response)
    assert level == "warning" and "Esperá un momento" in message
    assert AuditEvent.objects.filter(action=AuditAction.VERIFIED).count() == 4


def test_update_is_rate_limited_per_store(admin_client, admin_user, store, connected):
    for _ in range(6):
        AuditEvent.objects.create(store=store, user=admin_user, action=AuditAction.UPDATE_REQUESTED)
    response = admin_client.post(url("update", store), follow=True)
    [(level, message)] = shown_messages(response)
    assert level == "warning" and "Esperá un rato" in message
    assert not Run.objects.exists()


def test_buttons_need_the_csrf_token(admin_user, store, connected):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(url("verify", store)).status_code == 403
    assert client.post(url("update", store)).status_code == 403
    assert not AuditEvent.objects.exists()


def test_verify_and_update_need_post(admin_client, store, connected):
    assert admin_client.get(url("verify", store)).status_code == 405
    assert admin_client.get(url("update", store)).status_code == 405
    assert not AuditEvent.objects.exists()


# ---- updates: the rules, seen through the pages ------------------------------------------


@pytest.fixture
def catalog_scenario(store: Store, standin: Any, connected: Connection) -> None:
    """A store and an ERP catalog exercising every rule of issue #3."""
    make_items(
        store,
        [
            ("ACE-0001", 5, "100.00"),
            ("NEG-1", 7, "10.00"),
            ("OFF-1", 9, "30.00"),
            ("PNULL", 1, "50.00"),
            ("PABC", 1, "50.00"),
            ("PZERO", 1, "50.00"),
            ("PUSD", 1, "50.00"),
            ("ABC-1", 3, "40.00"),
            ("abc-1", 4, "41.00"),
            ("KEEP-1", 11, "12.00"),
        ],
    )
    standin.load(
        [
            erp_item(standin, "  ace-0001 ", "340.750", "18250.00"),
            erp_item(standin, "NEG-1", "-3.000", "10.00"),
            erp_item(standin, "OFF-1", "12.000", "30.00", activo=False),
            erp_item(standin, "PNULL", "4.000", None),
            erp_item(standin, "PABC", "6.000", "1.00"),
            erp_item(standin, "PZERO", "7.000", "0.00"),
            erp_item(standin, "PUSD", "8.000", "20.00", moneda="USD"),
            erp_item(standin, "ABC-1", "99.000", "99.00"),
            erp_item(standin, "GHOST-9", "5.000", "5.00"),
        ]
    )
    serve_price_as(standin, "PABC", "abc")


def catalog(store: Store) -> dict[str, tuple[int, Decimal]]:
    return {i.sku: (i.stock, i.wholesale_price) for i in Item.objects.filter(store=store)}


def test_update_applies_the_rules_and_the_run_page_shows_what_happened(
    admin_client, store, catalog_scenario, immediate_tasks, django_capture_on_commit_callbacks
):
    response = press_update(admin_client, store, django_capture_on_commit_callbacks)
    run = Run.objects.get(store=store)
    [(level, message)] = shown_messages(response)
    assert level == "success" and f"Actualización #{run.pk} pedida" in message
    assert run.status == RunStatus.WARNINGS, run.error_message

    assert catalog(store) == {
        "ACE-0001": (340, Decimal("18250.00")),  # matched ignoring case and spaces; floored
        "NEG-1": (0, Decimal("10.00")),  # negative stock is 0
        "OFF-1": (0, Decimal("30.00")),  # discontinued: 0
        "PNULL": (4, Decimal("50.00")),  # prices not applied, stock still applied
        "PABC": (6, Decimal("50.00")),
        "PZERO": (7, Decimal("50.00")),
        "PUSD": (8, Decimal("50.00")),
        "ABC-1": (3, Decimal("40.00")),  # ambiguous: both untouched
        "abc-1": (4, Decimal("41.00")),
        "KEEP-1": (11, Decimal("12.00")),  # not sent by the ERP: left alone
    }
    assert not Item.objects.filter(sku__iexact="GHOST-9").exists()  # never created

    assert (run.received, run.matched, run.stock_changed, run.price_changed) == (9, 7, 7, 1)
    assert (run.unmatched, run.ambiguous, run.invalid) == (1, 1, 0)
    assert (run.price_rejected, run.discontinued, run.unchanged) == (4, 1, 0)

    issues = {(i.kind, i.code.strip(), i.sku) for i in RunIssue.objects.filter(run=run)}
    assert issues == {
        (IssueKind.UNMATCHED, "GHOST-9", ""),
        (IssueKind.AMBIGUOUS, "ABC-1", "ABC-1"),
        (IssueKind.AMBIGUOUS, "ABC-1", "abc-1"),
        (IssueKind.DISCONTINUED, "OFF-1", "OFF-1"),
        (IssueKind.PRICE_REJECTED, "PNULL", "PNULL"),
        (IssueKind.PRICE_REJECTED, "PABC", "PABC"),
        (IssueKind.PRICE_REJECTED, "PZERO", "PZERO"),
        (IssueKind.PRICE_REJECTED, "PUSD", "PUSD"),
    }

    # History: one entry per changed item, from the ERP, pointing at the run.
    history = ItemChange.objects.filter(store=store)
    assert history.count() == 7
    assert set(history.values_list("source", "run_id")) == {(ChangeSource.ERP, run.pk)}
    ace = history.get(item__sku="ACE-0001")
    assert (ace.old_stock, ace.new_stock, ace.old_price, ace.new_price) == (
        5,
        340,
        Decimal("100.00"),
        Decimal("18250.00"),
    )

    # The integrations page: the last update and its result.
    page = text(admin_client.get(url("integrations", store)))
    assert "Completada con avisos" in page and f"#{run.pk}" in page
    assert "Pidió una actualización" in page

    # The run page: every count, the changes, the issues with their reasons.
    page = text(admin_client.get(url("run", store, run.pk)))
    assert f"Actualización #{run.pk}" in page and "Completada con avisos" in page
    assert "Pedida por admin@sur.test" in page
    for label, value in [
        ("Ítems recibidos", 9),
        ("Encontrados en la tienda", 7),
        ("Stock cambiado", 7),
        ("Precio cambiado", 1),
        ("Códigos sin producto en la tienda", 1),
        ("Precios no aplicados", 4),
        ("Discontinuados", 1),
    ]:
        assert f"{value} {label}" in page
    assert "ACE-0001 Descripción de ace-0001" not in page  # names are the store's
    assert "ACE-0001 ACE-0001 5 → 340 $ 100,00 → $ 18.250,00" in page
    assert "NEG-1 NEG-1 7 → 0 sin cambio" in page
    assert "GHOST-9" in page and "Ningún producto de la tienda tiene este SKU" in page
    assert "no se actualizó ninguno" in page
    assert "Detalle técnico:" in page

    filtered = text(admin_client.get(url("run", store, run.pk), {"kind": "price_rejected"}))
    assert "PUSD" in filtered and "GHOST-9" not in filtered
    assert "no se convierte" in filtered  # the currency reason


def test_csv_downloads_have_the_right_rows(
    admin_client, store, catalog_scenario, immediate_tasks, django_capture_on_commit_callbacks
):
    press_update(admin_client, store, django_capture_on_commit_callbacks)
    run = Run.objects.get(store=store)

    response = admin_client.get(url("run_changes_csv", store, run.pk))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert f"actualizacion-{run.pk}-cambios.csv" in response["Content-Disposition"]
    raw = b"".join(response.streaming_content)
    assert raw.startswith("\ufeff".encode())  # so Excel reads the accents as UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == [
        "SKU",
        "Nombre",
        "Stock anterior",
        "Stock nuevo",
        "Precio anterior",
        "Precio nuevo",
        "Fecha",
    ]
    by_sku = {row[0]: row for row in rows[1:]}
    assert len(by_sku) == 7
    assert by_sku["ACE-0001"][1:6] == ["ACE-0001", "5", "340", "100,00", "18250,00"]
    assert by_sku["PUSD"][1:6] == ["PUSD", "1", "8", "", ""]
    # The store's time zone, day first as Excel in Argentina reads a date.
    local = timezone.localtime(run.started_at, store.tz)
    assert by_sku["ACE-0001"][6].startswith(local.strftime("%d/%m/%Y"))

    response = admin_client.get(url("run_issues_csv", store, run.pk))
    raw = b"".join(response.streaming_content)
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Tipo", "Código ERP", "SKU", "Motivo"]
    labels = dict(IssueKind.choices)
    assert sorted((r[0], r[1].strip(), r[2]) for r in rows[1:]) == sorted(
        (labels[i.kind], i.code.strip(), i.sku) for i in RunIssue.objects.filter(run=run)
    )
    assert all(r[3] for r in rows[1:])

    response = admin_client.get(url("run_issues_csv", store, run.pk), {"kind": "unmatched"})
    raw = b"".join(response.streaming_content)
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert [r[:2] for r in rows[1:]] == [[labels["unmatched"], "GHOST-9"]]


def test_xlsx_downloads_have_typed_cells(
    admin_client, store, catalog_scenario, immediate_tasks, django_capture_on_commit_callbacks
):
    press_update(admin_client, store, django_capture_on_commit_callbacks)
    run = Run.objects.get(store=store)

    response = admin_client.get(url("run_changes_xlsx", store, run.pk))
    assert response.status_code == 200
    assert response["Content-Type"] == XLSX
    assert f"actualizacion-{run.pk}-cambios.xlsx" in response["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert sheet.freeze_panes == "A2"  # the header stays while scrolling
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("SKU", "Nombre", "Stock anterior")
    by_sku = {row[0]: row for row in rows[1:]}
    ace = by_sku["ACE-0001"]
    assert ace[2:6] == (5, 340, 100, 18250)
    assert all(isinstance(v, int | float) for v in ace[2:6])  # numbers, not text
    assert sheet.cell(row=2, column=5).number_format == "#,##0.00"
    assert by_sku["PUSD"][4:6] == (None, None)
    # A real date, in the store's time zone (naive: Excel has no zones).
    assert isinstance(ace[6], datetime)
    change = ItemChange.objects.filter(run=run, item__sku="ACE-0001").get()
    expected = timezone.localtime(change.at, store.tz).replace(tzinfo=None, microsecond=0)
    assert abs((ace[6] - expected).total_seconds()) < 1

    response = admin_client.get(url("run_issues_xlsx", store, run.pk), {"kind": "unmatched"})
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("Tipo", "Código ERP", "SKU", "Motivo")
    assert [r[:2] for r in rows[1:]] == [(dict(IssueKind.choices)["unmatched"], "GHOST-9")]


def test_csv_cells_cannot_smuggle_spreadsheet_formulas(admin_client, store, standin, connected):
    make_items(store, [("=HYPERLINK(1)", 1, "1.00")])
    standin.load(
        [erp_item(standin, "=HYPERLINK(1)", "2", "1.00"), erp_item(standin, "@SUM(1)", "1", "1")]
    )
    run = execute_run(request_update(store, origin="cli", enqueue=False).pk)
    changes = b"".join(admin_client.get(url("run_changes_csv", store, run.pk)).streaming_content)
    issues = b"".join(admin_client.get(url("run_issues_csv", store, run.pk)).streaming_content)
    assert b"\n'=HYPERLINK(1);" in changes.replace(b"\r\n", b"\n")
    assert b";'@SUM(1);" in issues
    # In the XLSX they are text cells, never formulas.
    workbook = b"".join(admin_client.get(url("run_changes_xlsx", store, run.pk)).streaming_content)
    sheet = openpyxl.load_workbook(io.BytesIO(workbook)).active
    assert sheet.cell(row=2, column=1).value == "=HYPERLINK(1)"
    assert sheet.cell(row=2, column=1).data_type == "s"


def test_second_identical_update_changes_nothing(
    admin_client, store, catalog_scenario, immediate_tasks, django_capture_on_commit_callbacks
):
    press_update(admin_client, store, django_capture_on_commit_callbacks)
    before = catalog(store)
    history = ItemChange.objects.count()

    press_update(admin_client, store, django_capture_on_commit_callbacks, full=True)
    second = Run.objects.filter(store=store).latest("id")
    assert second.full and second.received == 9
    assert (second.stock_changed, second.price_changed, second.unchanged) == (0, 0, 7)
    assert ItemChange.objects.count() == history
    assert catalog(store) == before
    page = text(admin_client.get(url("run", store, second.pk)))
    assert "Esta actualización no cambió ningún producto." in page


def test_incremental_update_after_an_erp_edit_sees_only_that_change(
    admin_client,
    store,
    catalog_scenario,
    standin,
    immediate_tasks,
    django_capture_on_commit_callbacks,
):
    press_update(admin_client, store, django_capture_on_commit_callbacks)
    standin.edit([{"codigo": "  ace-0001 ", "precio_mayorista": "19000.00"}])

    response = press_update(admin_client, store, django_capture_on_commit_callbacks)
    run = Run.objects.filter(store=store).latest("id")
    assert not run.full and run.status == RunStatus.SUCCEEDED, run.error_message
    assert (run.received, run.stock_changed, run.price_changed) == (1, 0, 1)
    assert ItemChange.objects.filter(run=run).count() == 1
    assert Item.objects.get(sku="ACE-0001").wholesale_price == Decimal("19000.00")
    assert "Completada" in text(response)

    page = text(admin_client.get(url("run", store, run.pk)))
    assert "ACE-0001 ACE-0001 sin cambio $ 18.250,00 → $ 19.000,00" in page


def test_failed_update_says_why_and_the_store_needs_attention(
    admin_client, store, standin, immediate_tasks, django_capture_on_commit_callbacks
):
    connect(store, standin, password="incorrecta")
    press_update(admin_client, store, django_capture_on_commit_callbacks)
    run = Run.objects.get(store=store)
    assert run.status == RunStatus.FAILED

    page = text(admin_client.get(url("run", store, run.pk)))
    assert "La actualización falló." in page
    assert "rechazó el usuario o la contraseña" in page

    page = text(admin_client.get(url("integrations", store)))
    assert "Necesita atención" in page and "rechazó el usuario o la contraseña" in page
    assert "incorrecta" not in page


# ---- one update at a time, in the background ---------------------------------------------


def test_pressing_update_while_one_is_queued_starts_nothing(
    admin_client, store, connected, django_capture_on_commit_callbacks
):
    # The database queue with no worker running: the first run stays queued.
    press_update(admin_client, store, django_capture_on_commit_callbacks)
    [queued] = Run.objects.filter(store=store)
    assert queued.status == RunStatus.QUEUED

    response = press_update(admin_client, store, django_capture_on_commit_callbacks, full=True)
    [(level, message)] = shown_messages(response)
    assert level == "warning" and "Ya hay una actualización en curso" in message
    assert f'href="{url("run", store, queued.pk)}"' in message
    assert Run.objects.filter(store=store).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.UPDATE_REQUESTED).count() == 1


def test_status_box_polls_while_the_run_is_active_and_stops_when_it_finished(
    admin_client, store, catalog_scenario, django_capture_on_commit_callbacks
):
    press_update(admin_client, store, django_capture_on_commit_callbacks)
    run = Run.objects.get(store=store)

    page = admin_client.get(url("integrations", store)).content.decode()
    assert 'hx-trigger="every 2s"' in page and url("status", store) in page
    fragment = admin_client.get(url("status", store), headers=HTMX)
    body = fragment.content.decode()
    assert 'hx-trigger="every 2s"' in body and "En cola" in body
    assert "<html" not in body  # a fragment, not a page
    # Without htmx the status URL is the page itself.
    assert admin_client.get(url("status", store))["Location"] == url("integrations", store)
    assert "Esperando a que empiece" in text(fragment)
    # Without JavaScript: a plain link reloads the page.
    assert "Recargar" in text(fragment)

    execute_run(run.pk)  # what the worker does

    fragment = admin_client.get(url("status", store), headers=HTMX)
    body = fragment.content.decode()
    assert "hx-trigger" not in body and "hx-get" not in body
    assert "Completada con avisos" in text(fragment)
    assert "9 recibidos" in text(fragment)
    assert url("run", store, run.pk) in body


@pytest.mark.django_db(transaction=True)
def test_update_through_the_database_queue_and_its_worker(
    admin_client, store, catalog_scenario, settings
):
    settings.TASKS = DATABASE_TASKS
    admin_client.post(url("update", store))  # autocommit: enqueued on commit
    run = Run.objects.get(store=store)
    assert run.status == RunStatus.QUEUED

    call_command(
        "db_worker", "--batch", "--no-startup-delay", stdout=io.StringIO(), stderr=io.StringIO()
    )

    run.refresh_from_db()
    assert run.status == RunStatus.WARNINGS, run.error_message
    assert Item.objects.get(store=store, sku="ACE-0001").stock == 340


def test_update_without_a_connection_says_to_configure_first(admin_client, store):
    response = admin_client.post(url("update", store), follow=True)
    assert shown_messages(response) == [("error", "Primero configurá el ERP de la tienda.")]
    assert not Run.objects.exists()


# ---- history ------------------------------------------------------------------------


def test_history_lists_every_run_with_who_when_status_and_counts(
    admin_client, store, catalog_scenario, immediate_tasks, django_capture_on_commit_callbacks
):
    press_update(admin_client, store, django_capture_on_commit_callbacks)
    cli_run = execute_run(request_update(store, origin="cli", enqueue=False).pk)
    panel_run = Run.objects.exclude(pk=cli_run.pk).get()

    response = admin_client.get(url("runs", store))
    page = text(response)
    rows = {row.split()[0]: row for row in page.split("#")[1:]}
    assert "Línea de comandos" in rows[str(cli_run.pk)]
    assert "admin@sur.test" in rows[str(panel_run.pk)]
    assert "Completada con avisos" in rows[str(panel_run.pk)]
    local = timezone.localtime(panel_run.created_at, store.tz).strftime("%d/%m/%Y %H:%M")
    assert local in rows[str(panel_run.pk)]
    # Counts, in the issue's order: received, matched, stock, price, unchanged,
    # unmatched, ambiguous, invalid, prices not applied, discontinued.
    assert "9 7 7 1 0 1 1 0 4 1" in rows[str(panel_run.pk)]
    assert "9 7 0 0 0 1 1 0 4 1" not in rows[str(panel_run.pk)]
    for header in ("Por", "Duración", "Estado", "Precios no aplicados", "Discontinuados"):
        assert header in page


def test_history_is_paged_and_expires_dead_runs(admin_client, store, connected):
    for _ in range(views.RUNS_PER_PAGE + 2):
        Run.objects.create(store=store, kind="nonsistemas", status=RunStatus.SUCCEEDED)
    dead = Run.objects.create(
        store=store,
        kind="nonsistemas",
        status=RunStatus.RUNNING,
        started_at=timezone.now() - timedelta(hours=1),
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    response = admin_client.get(url("runs", store))
    assert "Página 1 de 2" in text(response)
    assert len(response.context["page"].object_list) == views.RUNS_PER_PAGE
    assert "Más viejas" in text(response)
    second = admin_client.get(url("runs", store), {"page": 2})
    assert len(second.context["page"].object_list) == 3
    dead.refresh_from_db()
    assert dead.status == RunStatus.FAILED


def test_run_page_lists_are_keyset_paged(admin_client, store, standin, connected, monkeypatch):
    make_items(store, [(f"SKU-{i:02d}", 0, "1.00") for i in range(5)])
    standin.load(
        [erp_item(standin, f"SKU-{i:02d}", "3", "1.00") for i in range(5)]
        + [erp_item(standin, f"NOPE-{i}", "1", "1.00") for i in range(3)]
    )
    run = execute_run(request_update(store, origin="cli", enqueue=False).pk)
    monkeypatch.setattr(views, "PAGE_SIZE", 2)

    first = admin_client.get(url("run", store, run.pk))
    changes = first.context["changes"]
    assert [c.item.sku for c in changes.rows] == ["SKU-00", "SKU-01"]
    assert changes.prev_before is None and changes.next_after is not None
    second = admin_client.get(url("run", store, run.pk), {"c_after": changes.next_after})
    assert [c.item.sku for c in second.context["changes"].rows] == ["SKU-02", "SKU-03"]
    third = admin_client.get(
        url("run", store, run.pk), {"c_after": second.context["changes"].next_after}
    )
    assert [c.item.sku for c in third.context["changes"].rows] == ["SKU-04"]
    assert third.context["changes"].next_after is None
    back = admin_client.get(
        url("run", store, run.pk), {"c_before": third.context["changes"].prev_before}
    )
    assert [c.item.sku for c in back.context["changes"].rows] == ["SKU-02", "SKU-03"]
    # The issues list pages on its own, keeping the changes list where it was.
    issues = admin_client.get(
        url("run", store, run.pk),
        {"c_after": changes.next_after, "i_after": first.context["issues"].next_after},
    )
    assert [i.code for i in issues.context["issues"].rows] == ["NOPE-2"]
    assert [c.item.sku for c in issues.context["changes"].rows] == ["SKU-02", "SKU-03"]
    assert "Siguientes" in text(first) and "Anteriores" in text(second)


# ---- stores are walled off ---------------------------------------------------------------


def test_another_stores_pages_and_runs_are_404(
    admin_client, store, other_store, standin, catalog_scenario
):
    run = execute_run(request_update(store, origin="cli", enqueue=False).pk)
    connect(other_store, standin)
    foreign = execute_run(request_update(other_store, origin="cli", enqueue=False).pk)

    # Our own run, requested under our store: fine.
    assert admin_client.get(url("run", store, run.pk)).status_code == 200
    # The other store's run id, under our own store's URLs.
    for name in ("run", "run_changes_csv", "run_issues_csv"):
        assert admin_client.get(url(name, store, foreign.pk)).status_code == 404
    # Every page of the other store.
    for name, args in [
        ("integrations", ()),
        ("status", ()),
        ("runs", ()),
        ("settings", ("nonsistemas",)),
        ("run", (foreign.pk,)),
        ("run_changes_csv", (foreign.pk,)),
        ("run_issues_csv", (foreign.pk,)),
    ]:
        response = admin_client.get(url(name, other_store, *args), headers=HTMX)
        assert response.status_code == 404, name
    for name in ("verify", "update", "settings"):
        args = ("nonsistemas",) if name == "settings" else ()
        response = admin_client.post(
            url(name, other_store, *args), {"url": "http://x", "username": "u", "password": "p"}
        )
        assert response.status_code == 404, name
    assert Run.objects.filter(store=other_store).count() == 1
    assert (
        not AuditEvent.objects.filter(store=other_store)
        .exclude(action=AuditAction.UPDATE_REQUESTED)
        .exists()
    )


def test_unknown_erp_and_anonymous_users(client, admin_client, store):
    assert admin_client.get(url("settings", store, "sap")).status_code == 404
    response = client.get(url("integrations", store))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_member_of_both_stores_sees_each_ones_own(store, other_store, standin):
    user = get_user_model().objects.create_user("both@x.test", "both@x.test", TEST_PASSWORD)
    Membership.objects.create(store=store, user=user)
    Membership.objects.create(store=other_store, user=user)
    client = Client()
    client.force_login(user)
    connect(other_store, standin)
    assert "Sin verificar" in text(client.get(url("integrations", other_store)))
    assert "No conectado" in text(client.get(url("integrations", store)))


# ---- secrets never shown ----------------------------------------------------------------


def test_no_page_or_download_contains_the_password_or_the_token(
    admin_client,
    store,
    standin,
    catalog_scenario,
    immediate_tasks,
    django_capture_on_commit_callbacks,
):
    bodies = []
    bodies.append(admin_client.post(url("verify", store), follow=True).content)
    press_update(admin_client, store, django_capture_on_commit_callbacks)
    run = Run.objects.get(store=store)
    for name, args in [
        ("integrations", ()),
        ("status", ()),
        ("runs", ()),
        ("settings", ("nonsistemas",)),
        ("run", (run.pk,)),
    ]:
        bodies.append(admin_client.get(url(name, store, *args), headers=HTMX).content)
    for name in ("run_changes_csv", "run_issues_csv"):
        bodies.append(b"".join(admin_client.get(url(name, store, run.pk)).streaming_content))
    bodies.append(
        "".join(AuditEvent.objects.values_list("detail", flat=True)).encode()
        + "".join(Run.objects.values_list("error_message", flat=True)).encode()
    )
    tokens = list(standin._instance._tokens)  # what the stand-in handed out
    assert tokens
    for body in bodies:
        assert ERP_PASSWORD.encode() not in body
        for token in tokens:
            assert token.encode() not in body
