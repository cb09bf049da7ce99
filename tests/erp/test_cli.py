"""`vxm erp ...` end to end against the NonSistemas stand-in.

Commands run through call_command; a CommandError is what `vxm` turns into its
message on stderr and a non-zero exit status (CommandError.returncode).
"""

import io
import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Item
from erp.models import AuditAction, AuditEvent, Connection, Run, RunStatus
from stores.models import Store
from tests.conftest import ERP_PASSWORD, ERP_USER
from tests.erp.sync_helpers import connect, make_items

COUNTERS = {
    "received",
    "matched",
    "stock_changed",
    "price_changed",
    "unchanged",
    "unmatched",
    "ambiguous",
    "invalid",
    "price_rejected",
    "discontinued",
    "locked",
    # Added by issue #11; keys are only ever added, never renamed or removed.
    "changed_meanwhile",
    "reread",
    "pages",
    "requests",
    "retries",
    "relogins",
}


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def vxm(*args: str, stdin: str | None = None, stderr: io.StringIO | None = None) -> tuple[str, str]:
    """Run `vxm erp ARGS`; (stdout, stderr), or CommandError as vxm would exit with it."""
    out, err = io.StringIO(), stderr if stderr is not None else io.StringIO()
    extra: dict[str, Any] = {} if stdin is None else {"stdin": io.StringIO(stdin)}
    call_command("erp", *args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


def configure(
    standin: Any, *more: str, url: str | None = None, username: str = ERP_USER
) -> list[str]:
    return [
        "configure",
        "sur",
        "nonsistemas",
        "--url",
        url or standin.url,
        "--username",
        username,
        *more,
    ]


def load_catalog(store: Store, standin: Any) -> None:
    make_items(store, [("ACE-0001", 1, "10.00"), ("BEB-0002", 2, "20.00")])
    standin.load(
        [
            {"codigo": "ace-0001 ", "stock": "5.9", "precio_mayorista": "11.00"},
            {"codigo": "BEB-0002", "stock": "2", "precio_mayorista": None},
            {"codigo": "ZZZ-9", "stock": "1", "precio_mayorista": "1.00"},
        ]
    )


# ---- configure ----------------------------------------------------------------------


def test_configure_with_the_password_on_stdin(store, standin):
    out, err = vxm(*configure(standin, "--password-stdin"), stdin=ERP_PASSWORD + "\n")
    connection = Connection.objects.get(store=store)
    assert connection.get_password() == ERP_PASSWORD  # the newline is not part of it
    assert connection.url == standin.url + "/" and connection.username == ERP_USER
    assert "Configuración guardada" in out and "vxm erp verify sur" in out
    assert ERP_PASSWORD not in out + err
    event = AuditEvent.objects.get(store=store, action=AuditAction.CONFIGURED)
    assert event.actor == "Línea de comandos" and event.user is None
    assert ERP_PASSWORD not in event.detail


def test_configure_with_the_password_in_the_environment(store, standin, monkeypatch):
    monkeypatch.setenv("VXM_ERP_PASSWORD", ERP_PASSWORD)
    vxm(*configure(standin))
    assert Connection.objects.get(store=store).get_password() == ERP_PASSWORD


def test_configure_refuses_a_password_on_the_command_line(store, standin):
    with pytest.raises(CommandError, match="No se acepta la contraseña como argumento"):
        vxm(*configure(standin, "--password", ERP_PASSWORD))
    assert not Connection.objects.exists()


def test_configure_refuses_two_passwords(store, standin, monkeypatch):
    monkeypatch.setenv("VXM_ERP_PASSWORD", "otra")
    with pytest.raises(CommandError, match="usá una sola"):
        vxm(*configure(standin, "--password-stdin"), stdin=ERP_PASSWORD)


def test_configure_needs_a_password_the_first_time(store, standin, monkeypatch):
    monkeypatch.delenv("VXM_ERP_PASSWORD", raising=False)
    with pytest.raises(CommandError) as raised:
        vxm(*configure(standin))
    assert "Contraseña: Escribí la contraseña." in str(raised.value)
    assert "--password-stdin" in str(raised.value)
    assert raised.value.returncode == 1
    assert not Connection.objects.exists()


def test_configure_validates_the_url_like_the_form(store, standin, settings):
    settings.VXM_ALLOW_LOCAL_ERP = False
    with pytest.raises(CommandError, match="URL: "):
        vxm(*configure(standin, "--password-stdin", url="http://169.254.169.254/"), stdin="x")
    assert not Connection.objects.exists()


def test_configure_keeps_the_password_for_the_same_server_and_asks_for_a_new_one(
    store, standin, monkeypatch
):
    monkeypatch.delenv("VXM_ERP_PASSWORD", raising=False)
    connect(store, standin)
    vxm(*configure(standin, username="otro"))
    connection = Connection.objects.get(store=store)
    assert connection.username == "otro" and connection.get_password() == ERP_PASSWORD

    other = standin.url.replace("127.0.0.1", "localhost")
    with pytest.raises(CommandError, match="Cambiaste el servidor de la URL"):
        vxm(*configure(standin, url=other))
    connection.refresh_from_db()
    assert "127.0.0.1" in connection.url

    vxm(*configure(standin, "--password-stdin", url=other), stdin="nueva")
    connection.refresh_from_db()
    assert "localhost" in connection.url and connection.get_password() == "nueva"


def test_unknown_store_and_unknown_erp(store, standin):
    with pytest.raises(CommandError, match="No existe la tienda «nada»"):
        vxm("verify", "nada")
    with pytest.raises(CommandError):
        vxm("configure", "sur", "sap", "--url", standin.url, "--username", "u")


# ---- verify -------------------------------------------------------------------------


def test_verify_prints_the_version_and_exits_zero(store, standin):
    connect(store, standin)
    out, _ = vxm("verify", "sur")
    assert out == "La conexión funciona: NonSistemas 4.3.1.\n"
    event = AuditEvent.objects.get(action=AuditAction.VERIFIED)
    assert event.actor == "Línea de comandos"


def test_verify_failure_exits_non_zero_with_the_diagnosis(store, standin):
    connect(store, standin, password="incorrecta")
    with pytest.raises(CommandError) as raised:
        vxm("verify", "sur")
    assert raised.value.returncode == 1
    assert "bad_credentials" in str(raised.value)
    assert "rechazó el usuario o la contraseña" in str(raised.value)
    assert "incorrecta" not in str(raised.value)


def test_verify_without_a_connection_fails(store):
    with pytest.raises(CommandError, match="no tiene un ERP configurado"):
        vxm("verify", "sur")


def test_verify_is_not_rate_limited_on_the_command_line(store, standin):
    connect(store, standin)
    for _ in range(5):
        vxm("verify", "sur")
    assert AuditEvent.objects.filter(action=AuditAction.VERIFIED).count() == 5


# ---- sync ---------------------------------------------------------------------------


def test_sync_json_prints_one_object_with_the_run(store, standin):
    connect(store, standin)
    load_catalog(store, standin)
    out, err = vxm("sync", "sur", "--full", "--json")
    summary = json.loads(out)  # exactly one JSON document on stdout
    assert set(summary) >= {
        "id",
        "status",
        "full",
        "counts",
        "duration_seconds",
        "started_at",
        "finished_at",
        "error_code",
        "error_message",
    }
    run = Run.objects.get(store=store)
    assert summary["id"] == run.pk and summary["full"] is True
    assert summary["status"] == "warnings"  # a price was not applied
    assert set(summary["counts"]) == COUNTERS
    counts = summary["counts"]
    assert (counts["received"], counts["matched"], counts["unmatched"]) == (3, 2, 1)
    # ACE-0001: 1 → 5 units and 10 → 11; BEB-0002: same stock, its null price not applied.
    assert (counts["stock_changed"], counts["price_changed"], counts["price_rejected"]) == (
        1,
        1,
        1,
    )
    assert summary["duration_seconds"] >= 0
    assert summary["requested_by"] == "Línea de comandos"
    assert summary["error_code"] == "" and summary["error_message"] == ""
    assert summary["finished_at"].endswith("-03:00")
    assert err == ""  # no progress bar when stderr is not a terminal
    assert Item.objects.get(sku="ACE-0001").stock == 5


def test_sync_prints_a_human_summary(store, standin):
    connect(store, standin)
    load_catalog(store, standin)
    out, _ = vxm("sync", "sur")
    assert out.startswith(f"Actualización #{Run.objects.get().pk}: Completada con avisos")
    assert "Códigos sin producto en la tienda" in out and "Precios no aplicados" in out


def test_a_signal_that_came_while_the_run_finished_does_not_report_it_stopped(
    store, standin, monkeypatch
):
    # SIGTERM during the run's last transaction (no page boundary left): the run
    # succeeded, and the command says so and exits 0.
    import signal

    from erp import stopping

    connect(store, standin)
    load_catalog(store, standin)
    monkeypatch.setattr(stopping, "requested", lambda: signal.SIGTERM)
    out, _ = vxm("sync", "sur")
    assert out.startswith(f"Actualización #{Run.objects.get().pk}: Completada con avisos")


def test_sync_shows_progress_on_a_terminal(store, standin):
    connect(store, standin)
    load_catalog(store, standin)
    tty = Tty()
    vxm("sync", "sur", stderr=tty)
    assert "3/3 ítems" in tty.getvalue() and "1 página" in tty.getvalue()


def test_failed_sync_still_prints_its_json_and_exits_non_zero(store, standin):
    connect(store, standin, password="incorrecta")
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("erp", "sync", "sur", "--json", stdout=out, stderr=io.StringIO())
    assert raised.value.returncode == 1
    summary = json.loads(out.getvalue())
    assert summary["status"] == "failed" and summary["error_code"] == "bad_credentials"
    assert "rechazó el usuario o la contraseña" in summary["error_message"]
    assert "incorrecta" not in out.getvalue()


def test_sync_while_an_update_is_running_starts_nothing(store, standin):
    connect(store, standin)
    running = Run.objects.create(store=store, kind="nonsistemas", status=RunStatus.QUEUED)
    with pytest.raises(CommandError) as raised:
        vxm("sync", "sur", "--json")
    assert raised.value.returncode == 3
    assert f"#{running.pk}" in str(raised.value) and "no se empezó otra" in str(raised.value)
    assert Run.objects.count() == 1


def test_sync_without_a_connection_fails(store):
    with pytest.raises(CommandError, match="no tiene un ERP conectado"):
        vxm("sync", "sur")


# ---- runs, generate-key, reencrypt ----------------------------------------------------


def test_runs_json_lists_the_history_newest_first(store, standin):
    connect(store, standin)
    load_catalog(store, standin)
    first = json.loads(vxm("sync", "sur", "--json")[0])
    second = json.loads(vxm("sync", "sur", "--full", "--json")[0])
    listed = json.loads(vxm("runs", "sur", "--json")[0])
    assert [run["id"] for run in listed] == [second["id"], first["id"]]
    assert listed[0] == second
    assert listed[0]["counts"]["stock_changed"] == 0  # the second run changed nothing
    assert [run["id"] for run in json.loads(vxm("runs", "sur", "--json", "--limit", "1")[0])] == [
        second["id"]
    ]


def test_runs_table(store, standin):
    assert "todavía no hubo actualizaciones" in vxm("runs", "sur")[0]
    connect(store, standin)
    load_catalog(store, standin)
    vxm("sync", "sur")
    out, _ = vxm("runs", "sur")
    header, row = out.splitlines()
    assert "estado" in header and "recib." in header
    assert "Completada con avisos" in row and "Línea de comandos" in row


def test_generate_key_prints_a_fernet_key(db):
    out, _ = vxm("generate-key")
    Fernet(out.strip().encode())  # raises if it is not a valid key


def test_reencrypt_moves_every_password_to_the_first_key(store, other_store, settings, standin):
    old_key = settings.VXM_ENCRYPTION_KEYS[0]
    connect(store, standin)
    connect(other_store, standin, password="otra")
    new_key = Fernet.generate_key().decode()
    settings.VXM_ENCRYPTION_KEYS = [new_key, old_key]
    out, _ = vxm("reencrypt")
    assert "2 contraseñas" in out
    settings.VXM_ENCRYPTION_KEYS = [new_key]  # the old key dropped
    passwords = {c.store.slug: c.get_password() for c in Connection.objects.select_related("store")}
    assert passwords == {"sur": ERP_PASSWORD, "norte": "otra"}


def test_reencrypt_names_the_stores_no_key_can_read(store, settings, standin):
    connect(store, standin)
    settings.VXM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="sur"):
        vxm("reencrypt")


def test_reencrypt_without_keys_says_what_to_set(store, standin, settings):
    connect(store, standin)
    settings.VXM_ENCRYPTION_KEYS = []
    with pytest.raises(CommandError, match="VXM_ENCRYPTION_KEYS"):
        call_command("erp", "reencrypt")
