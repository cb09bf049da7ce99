"""Issue #10's "a store scheduled every 15 minutes updates itself with no click",
in a real browser: the admin sets the schedule on the ERP page, sees when the
next update runs, and after the clock's tick and the worker (a separate
process, as in production) finds the scheduled update done, with the next one
announced. Screenshots at 1280 and 390 px (/tmp/vxm-screens/schedule-*)."""

import re
from typing import Any

import pytest

from erp.models import Run, RunStatus, Schedule
from erp.schedule import enqueue_due_updates
from tests.browser.conftest import log_in
from tests.erp.sync_helpers import connect, make_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_schedules_every_15_minutes_and_the_store_updates_itself(
    page: Any, live_server: Any, store, admin_user, standin, run_worker, screenshot, settings
):
    from playwright.sync_api import expect

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    connect(store, standin)
    make_items(store, [("Fideos Tallarín N°5 ", 10, "820.00")])
    standin.load([{"codigo": "fideos tallarín n°5", "stock": "64", "precio_mayorista": "845.00"}])
    log_in(page, live_server.url, admin_user.email)
    page.goto(f"{live_server.url}/s/{store.slug}/integrations/erp/")
    card = page.locator("#programacion")
    expect(card).to_contain_text("Desactivadas")

    card.get_by_label("Actualizar automáticamente").select_option(label="Cada 15 minutos")
    card.get_by_role("button", name="Guardar programación").click()
    expect(page.get_by_text("Listo: la tienda se actualiza sola cada 15 minutos.")).to_be_visible()
    expect(card).to_contain_text("La tienda se actualiza sola cada 15 minutos.")
    expect(card.locator("#schedule-next")).to_contain_text("Próxima: ahora")
    expect(card.get_by_label("Actualizar automáticamente")).to_have_value("15m")
    screenshot("schedule-set-1280")

    # The clock ticks (erp.tasks.enqueue_due_updates), a worker runs the update.
    (run_id,) = enqueue_due_updates().requested
    run_worker()
    assert Run.objects.get(pk=run_id).status == RunStatus.SUCCEEDED

    page.reload()
    expect(card).to_contain_text(f"Última automática: #{run_id} (Completada)")
    expect(card.locator("#schedule-next")).to_contain_text(
        re.compile(r"dentro\s+de\s+\d+\s+minutos")
    )
    schedule = Schedule.objects.get(store=store)
    assert schedule.next_run_at is not None
    expect(card.locator("#schedule-next")).to_contain_text(
        f"{schedule.next_run_at.astimezone(store.tz):%d/%m/%Y %H:%M}, hora de la tienda"
    )
    page.set_viewport_size({"width": 390, "height": 844})
    card.scroll_into_view_if_needed()
    screenshot("schedule-done-390")
    # The history says who started it.
    page.goto(f"{live_server.url}/s/{store.slug}/integrations/erp/runs/")
    expect(page.locator("body")).to_contain_text("Programada")


def test_a_paused_schedule_says_why_and_saving_the_settings_resumes_it(
    page: Any, live_server: Any, store, admin_user, standin, screenshot, settings
):
    from django.utils import timezone
    from playwright.sync_api import expect

    from erp.errors import ErrorCode
    from erp.models import ScheduleKind
    from erp.schedule import set_schedule
    from tests.conftest import ERP_PASSWORD

    connect(store, standin)
    set_schedule(store, kind=ScheduleKind.EVERY, every_minutes=60)
    Schedule.objects.filter(store=store).update(
        paused_at=timezone.now(),
        paused_code=ErrorCode.BAD_CREDENTIALS,
        paused_reason="NonSistemas rechazó el usuario o la contraseña de la API. Revisalos y "
        "volvé a guardarlos.",
        next_run_at=None,
        failures=1,
    )
    log_in(page, live_server.url, admin_user.email)
    page.goto(f"{live_server.url}/s/{store.slug}/integrations/erp/")
    card = page.locator("#programacion")
    expect(card.locator("#schedule-paused")).to_contain_text("Pausadas")
    expect(card).to_contain_text("Corregí el usuario o la contraseña de la API y guardá")
    expect(card.locator("#schedule-next")).to_have_count(0)
    screenshot("schedule-paused-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    card.scroll_into_view_if_needed()
    screenshot("schedule-paused-390")

    card.get_by_role("link", name="Ir a la configuración").click()
    page.get_by_label("Contraseña").fill(ERP_PASSWORD)
    page.get_by_role("button", name="Guardar").click()
    expect(card.locator("#schedule-state")).to_contain_text("Activadas")
    expect(card.locator("#schedule-next")).to_contain_text("Próxima: ahora")
    assert not Schedule.objects.get(store=store).is_paused
