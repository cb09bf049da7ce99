"""Setting and reading a store's schedule: `vxm erp schedule`, the ERP page's card,
the history and `vxm erp runs --json` naming scheduled runs, `vxm scheduler`."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from erp.engine import execute_run, request_update
from erp.errors import ErrorCode
from erp.models import AuditAction, AuditEvent, Run, Schedule, ScheduleKind
from erp.schedule import enqueue_due_updates
from stores.models import Store
from tests.erp.sync_helpers import connect
from tests.erp.test_cli import vxm
from tests.erp.test_pages import shown_messages, text, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def connected(store: Store, standin: Any) -> None:
    connect(store, standin)


# ---- vxm erp schedule ---------------------------------------------------------------


def test_cli_sets_prints_and_turns_off_the_schedule(store, connected):
    out, _ = vxm("schedule", "sur")
    assert out.splitlines() == ["sur: actualizaciones automáticas desactivadas."]

    out, _ = vxm("schedule", "sur", "--every", "15m")
    lines = out.splitlines()
    assert lines[0] == "sur: actualizaciones automáticas cada 15 minutos."
    # Just scheduled: the first run is due now, shown in the store's time zone.
    local_now = timezone.now().astimezone(store.tz)
    assert lines[1].startswith(f"Próxima: {local_now:%Y-%m-%d} ")
    assert "(America/Argentina/Buenos_Aires), en 0 min." in lines[1]
    event = AuditEvent.objects.get(store=store, action=AuditAction.SCHEDULE_CHANGED)
    assert (event.actor, event.detail) == (
        "Línea de comandos",
        "Actualizaciones automáticas: cada 15 minutos",
    )

    out, _ = vxm("schedule", "sur", "--daily", "03:30")
    assert out.splitlines()[0] == "sur: actualizaciones automáticas todos los días a las 03:30."
    out, _ = vxm("schedule", "sur", "--off")
    assert out.splitlines() == ["sur: actualizaciones automáticas desactivadas."]
    assert Schedule.objects.get(store=store).next_run_at is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "7m"], "«7m» no es una frecuencia válida: usá 15m, 30m, 1h, 6h o 24h."),
        (["--daily", "25:00"], "«25:00» no es una hora válida: usá HH:MM de 24 horas"),
        (["--daily", "mañana"], "«mañana» no es una hora válida"),
    ],
)
def test_cli_bad_values_fail_with_a_clear_message_and_change_nothing(
    store, connected, args, message
):
    vxm("schedule", "sur", "--every", "1h")
    with pytest.raises(CommandError, match=message) as raised:
        vxm("schedule", "sur", *args)
    assert raised.value.returncode != 0
    assert Schedule.objects.get(store=store).every_minutes == 60


def test_cli_refuses_two_schedules_at_once_and_an_unknown_store(store, connected):
    with pytest.raises(CommandError):
        vxm("schedule", "sur", "--every", "15m", "--off")
    with pytest.raises(CommandError, match="No existe la tienda «nada»"):
        vxm("schedule", "nada", "--every", "15m")


def test_cli_says_why_a_schedule_is_paused_and_what_to_do(store, connected):
    vxm("schedule", "sur", "--every", "30m")
    Schedule.objects.filter(store=store).update(
        paused_at=timezone.now(),
        paused_code=ErrorCode.BAD_CREDENTIALS,
        paused_reason="NonSistemas rechazó el usuario o la contraseña de la API.",
        next_run_at=None,
        failures=1,
    )
    out, _ = vxm("schedule", "sur")
    assert "PAUSADAS desde el" in out
    assert "NonSistemas rechazó el usuario o la contraseña de la API." in out
    assert "Qué hacer: Corregí el usuario o la contraseña" in out
    assert "Próxima" not in out


def test_runs_json_says_where_each_run_came_from(store, connected, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    execute_run(request_update(store, origin="cli", enqueue=False).pk)
    vxm("schedule", "sur", "--every", "15m")
    (run_id,) = enqueue_due_updates().requested
    execute_run(run_id)
    listed = json.loads(vxm("runs", "sur", "--json")[0])
    assert [(run["origin"], run["requested_by"]) for run in listed] == [
        ("schedule", "Programada"),
        ("cli", "Línea de comandos"),
    ]


# ---- The ERP page ---------------------------------------------------------------------


def test_page_sets_every_15_minutes_and_shows_the_next_run(admin_client, store, connected):
    page = text(admin_client.get(url("integrations", store)))
    assert "Actualizaciones automáticas" in page
    assert "Desactivadas: la tienda se actualiza solo cuando la pedís" in page

    response = admin_client.post(url("schedule", store), {"frequency": "15m"}, follow=True)
    assert (
        "success",
        "Listo: la tienda se actualiza sola cada 15 minutos. La primera "
        "actualización empieza dentro de un minuto.",
    ) in shown_messages(response)
    page = text(response)
    assert "La tienda se actualiza sola cada 15 minutos." in page
    schedule = Schedule.objects.get(store=store)
    assert schedule.next_run_at is not None
    local = schedule.next_run_at.astimezone(store.tz)
    assert f"Próxima: ahora ({local:%d/%m/%Y %H:%M}, hora de la tienda)" in page
    event = AuditEvent.objects.get(store=store, action=AuditAction.SCHEDULE_CHANGED)
    assert event.actor == "admin@sur.test"


def test_page_daily_needs_a_time(admin_client, store, connected):
    response = admin_client.post(
        url("schedule", store), {"frequency": "daily", "daily_at": ""}, follow=True
    )
    assert shown_messages(response) == [
        ("error", "No se guardó la programación. Indicá la hora, por ejemplo 03:00.")
    ]
    response = admin_client.post(
        url("schedule", store), {"frequency": "daily", "daily_at": "25:00"}, follow=True
    )
    assert "Escribí la hora como HH:MM" in shown_messages(response)[0][1]
    assert not Schedule.objects.filter(store=store).exists()
    admin_client.post(url("schedule", store), {"frequency": "daily", "daily_at": "06:15"})
    schedule = Schedule.objects.get(store=store)
    assert (schedule.kind, f"{schedule.daily_at:%H:%M}") == (ScheduleKind.DAILY, "06:15")


def test_page_shows_a_pause_with_what_to_do(admin_client, store, connected):
    admin_client.post(url("schedule", store), {"frequency": "1h"})
    Schedule.objects.filter(store=store).update(
        paused_at=timezone.now(),
        paused_code=ErrorCode.NO_API_ACCESS,
        paused_reason="El usuario existe en NonSistemas pero no tiene habilitado el acceso "
        "a la API.",
        next_run_at=None,
    )
    page = text(admin_client.get(url("integrations", store)))
    assert "Pausadas" in page
    assert "no tiene habilitado el acceso a la API" in page
    assert "Qué hacer: Pedile al administrador de NonSistemas que habilite" in page
    assert "Próxima:" not in page


def test_another_stores_admin_cannot_change_the_schedule(admin_client, store, other_store):
    response = admin_client.post(url("schedule", other_store), {"frequency": "15m"})
    assert response.status_code == 404
    assert not Schedule.objects.exists()


def test_schedule_form_needs_post(admin_client, store):
    assert admin_client.get(url("schedule", store)).status_code == 405


def test_history_shows_programada_for_scheduled_runs(admin_client, store, connected, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    admin_client.post(url("schedule", store), {"frequency": "15m"})
    (run_id,) = enqueue_due_updates(now=timezone.now() + timedelta(seconds=1)).requested
    execute_run(run_id)
    page = text(admin_client.get(url("runs", store)))
    assert f"#{run_id}" in page
    row = page.split(f"#{run_id}")[1]
    assert "Programada" in row.split("#")[0]
    assert Run.objects.get(pk=run_id).origin == "schedule"


# ---- vxm scheduler ---------------------------------------------------------------------


def test_the_scheduler_ticks_enqueue_due_updates_every_minute():
    from apscheduler.triggers.cron import CronTrigger
    from crontask import scheduler

    import erp.tasks  # noqa: F401  (what `vxm scheduler` loads)

    jobs = [job for job in scheduler.get_jobs() if job.name == "enqueue_due_updates"]
    assert len(jobs) == 1
    trigger = jobs[0].trigger
    assert isinstance(trigger, CronTrigger)
    assert str(trigger.fields[trigger.FIELD_NAMES.index("minute")]) == "*"


def test_the_deploy_check_fails_without_an_smtp_server(tmp_path):
    """The admins' emails would only be printed on a console nobody reads."""
    from tests.test_security import production_env, vxm_check

    env = production_env()
    del env["VXM_EMAIL_HOST"]
    result = vxm_check(tmp_path, "--deploy", **env)
    assert result.returncode == 1
    assert "mail.E001" in result.stderr
    assert vxm_check(tmp_path, "--deploy", **production_env()).returncode == 0
