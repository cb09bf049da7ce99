"""Scheduled updates (issue #10 items 1 and 2): a store updates itself on its schedule,
through the same engine as the button, once per slot whatever the number of
schedulers; failures back off, failures only the admin can fix pause the
schedule until the settings are saved, and the admins get one email for each
thing they should know (a failure streak, a pause, the recovery).

The clock is injected: the tick takes `now`, so no test sleeps.
"""

import itertools
import threading
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection as db_connection
from django.utils import timezone

from catalog.models import Item
from erp import actions, notifications
from erp.engine import execute_run, request_update
from erp.errors import ErrorCode
from erp.models import (
    AuditAction,
    AuditEvent,
    Run,
    RunStatus,
    Schedule,
    ScheduleKind,
)
from erp.schedule import (
    BACKOFF_BASE,
    BadSchedule,
    backoff,
    enqueue_due_updates,
    next_regular_run,
    parse_daily,
    parse_every,
    record_outcome,
    set_schedule,
)
from nonsistemas_standin import Fault
from stores.models import Membership, Store
from tests.conftest import ERP_PASSWORD, ERP_USER
from tests.erp.sync_helpers import connect, make_items

pytestmark = pytest.mark.django_db(transaction=True)

IMMEDIATE = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.fixture
def worker(settings: Any) -> None:
    """Each requested run is performed at once, by the task a worker would run
    (erp.tasks.run_update: the engine, then the schedule's bookkeeping)."""
    settings.TASKS = IMMEDIATE


@pytest.fixture
def queue_only(settings: Any) -> None:
    """Requested runs stay queued (a worker would take them later)."""
    settings.TASKS = DATABASE_TASKS


@pytest.fixture
def catalog(store: Store, standin: Any) -> None:
    connect(store, standin)
    make_items(
        store, [("Yerba Mate 1kg #12", 3, "1500.00"), (" ACEITE-GIRASOL 900ml ", 7, "2100.50")]
    )
    standin.load(
        [
            {"codigo": "yerba mate 1kg #12", "stock": "40", "precio_mayorista": "1625.00"},
            {"codigo": "aceite-girasol 900ml", "stock": "12", "precio_mayorista": "2100.50"},
        ]
    )


def every_15(store: Store, now: datetime) -> Schedule:
    return set_schedule(store, kind=ScheduleKind.EVERY, every_minutes=15, now=now)


def next_run(store: Store) -> datetime:
    at = Schedule.objects.get(store=store).next_run_at
    assert at is not None
    return at


def scheduled_runs(store: Store) -> list[Run]:
    return list(Run.objects.filter(store=store, origin="schedule").order_by("pk"))


def login_attempts(standin: Any) -> int:
    return sum(1 for request in standin.requests() if request["path"].endswith("/login"))


# ---- A store updates itself ----------------------------------------------------------


def test_a_store_scheduled_every_15_minutes_updates_itself_with_no_click(
    store, admin_user, catalog, worker
):
    now = timezone.now()
    every_15(store, now)
    # Just scheduled: due at once, so the next tick (within a minute) runs it.
    result = enqueue_due_updates(now=now + timedelta(seconds=30))
    assert len(result.requested) == 1
    run = Run.objects.get(pk=result.requested[0])
    assert run.origin == "schedule"
    assert run.requested_by is None
    assert run.status == RunStatus.SUCCEEDED
    assert Item.objects.get(store=store, sku="Yerba Mate 1kg #12").stock == 40
    requested = AuditEvent.objects.get(store=store, action=AuditAction.UPDATE_REQUESTED)
    assert requested.actor == "Programada"
    # The next slot is at least half an interval away, and nothing is due before it.
    schedule = Schedule.objects.get(store=store)
    assert schedule.last_run_id == run.pk
    due = next_run(store)
    assert now + timedelta(minutes=7, seconds=30) <= due <= now + timedelta(minutes=23)
    assert enqueue_due_updates(now=due - timedelta(seconds=1)).requested == []
    assert len(enqueue_due_updates(now=due).requested) == 1
    # A routine success emails nobody.
    assert mail.outbox == []


def test_a_scheduled_run_queued_for_a_worker_is_run_by_the_engine(store, catalog, queue_only):
    every_15(store, timezone.now())
    (run_id,) = enqueue_due_updates().requested
    assert Run.objects.get(pk=run_id).status == RunStatus.QUEUED
    run = execute_run(run_id)
    assert (run.origin, run.status) == ("schedule", RunStatus.SUCCEEDED)


def test_stores_without_a_schedule_or_turned_off_are_never_requested(
    store, other_store, catalog, worker, standin
):
    connect(other_store, standin)
    now = timezone.now()
    every_15(store, now)
    set_schedule(store, kind=ScheduleKind.OFF, now=now)
    assert enqueue_due_updates(now=now + timedelta(days=1)).requested == []
    assert Run.objects.count() == 0


def test_a_store_still_updating_is_skipped_until_its_next_slot(store, catalog, queue_only):
    running = request_update(store, origin="panel", enqueue=False)
    now = timezone.now()
    every_15(store, now)
    result = enqueue_due_updates(now=now)
    assert (result.requested, result.busy) == ([], 1)
    assert list(Run.objects.filter(store=store)) == [running]
    # Its slot moved on: the next tick does not try again right away.
    assert next_run(store) > now + timedelta(minutes=7)
    assert enqueue_due_updates(now=now + timedelta(minutes=1)).busy == 0


def test_after_three_hours_of_downtime_one_catch_up_run_not_a_flood(store, catalog, queue_only):
    start = timezone.now()
    every_15(store, start)
    Schedule.objects.filter(store=store).update(next_run_at=start)
    later = start + timedelta(hours=3)
    assert len(enqueue_due_updates(now=later).requested) == 1
    assert len(scheduled_runs(store)) == 1
    following = next_run(store)
    # Counted from now, not from the 12 missed slots.
    assert later + timedelta(minutes=7, seconds=30) <= following <= later + timedelta(minutes=23)
    Run.objects.filter(store=store).update(status=RunStatus.SUCCEEDED)
    for minute in range(1, 7):
        assert enqueue_due_updates(now=later + timedelta(minutes=minute)).requested == []


def test_a_tick_requests_at_most_its_batch_the_most_overdue_first(db, standin, queue_only):
    now = timezone.now()
    stores = []
    for n in range(5):
        store = Store.objects.create(name=f"Almacén Ñandú {n}", slug=f"nandu-{n}")
        connect(store, standin)
        every_15(store, now)
        Schedule.objects.filter(store=store).update(next_run_at=now - timedelta(minutes=n))
        stores.append(store)
    first = enqueue_due_updates(now=now, batch=2)
    assert [Run.objects.get(pk=pk).store for pk in first.requested] == [stores[4], stores[3]]
    assert len(enqueue_due_updates(now=now, batch=2).requested) == 2
    assert len(enqueue_due_updates(now=now, batch=2).requested) == 1


# ---- Two schedulers ---------------------------------------------------------------------


def test_two_ticks_at_once_never_request_two_runs_for_a_store(db, standin, queue_only):
    now = timezone.now()
    stores = []
    for n in range(12):
        store = Store.objects.create(name=f"Distribuidora Güemes {n}", slug=f"guemes-{n}")
        connect(store, standin)
        every_15(store, now)
        stores.append(store)
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def tick() -> None:
        barrier.wait()
        try:
            results.append(enqueue_due_updates(now=now + timedelta(seconds=5)))
        except BaseException as e:  # a thread's failure must fail the test
            errors.append(e)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    runs_per_store = Counter(Run.objects.values_list("store_id", flat=True))
    assert runs_per_store == {store.pk: 1 for store in stores}
    # The claim decided, not the one-active-run constraint: neither tick ever
    # tried to request a run for a store the other had claimed.
    assert sum(len(r.requested) for r in results) == 12
    assert sum(r.busy for r in results) == 0


# ---- Slots --------------------------------------------------------------------------------


def test_daily_runs_at_the_time_in_the_stores_time_zone(store, standin):
    store.time_zone = "Asia/Tokyo"
    store.save()
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo
    schedule = set_schedule(store, kind=ScheduleKind.DAILY, daily_at=time(3, 30), now=now)
    assert schedule.next_run_at == now  # the first one at once
    slot = next_regular_run(schedule, now)
    assert slot is not None
    local = slot.astimezone(store.tz)
    # Tomorrow 03:30 in Tokyo (18:30 UTC today), within the daily spread.
    assert local.date().isoformat() == "2026-12-05"
    assert time(3, 30) <= local.time() < time(3, 35)
    # Buenos Aires' 03:30 is 12 hours later.
    store.time_zone = "America/Argentina/Buenos_Aires"
    schedule.store = store
    ba = next_regular_run(schedule, now)
    assert ba is not None and ba.astimezone(store.tz).date().isoformat() == "2026-12-05"
    assert (ba - slot) == timedelta(hours=12)


def test_daily_slot_later_today_is_today(store):
    now = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)  # 02:00 in Buenos Aires
    schedule = set_schedule(store, kind=ScheduleKind.DAILY, daily_at=time(3, 30), now=now)
    slot = next_regular_run(schedule, now)
    assert slot is not None
    assert slot.astimezone(store.tz).date().isoformat() == "2026-12-04"


def test_jitter_spreads_many_stores_over_the_interval(db):
    now = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
    minutes: Counter[int] = Counter()
    for store_id in range(1, 301):
        schedule = Schedule(store_id=store_id, kind=ScheduleKind.EVERY, every_minutes=15)
        slot = next_regular_run(schedule, now)
        assert slot is not None
        minutes[slot.minute % 15] += 1
        # Always the same offset for the same store.
        assert next_regular_run(schedule, now) == slot
    assert len(minutes) == 15  # every minute of the quarter gets some
    assert max(minutes.values()) < 40  # ~20 on average, none a crowd


def test_backoff_grows_and_is_capped():
    delays = [backoff(n) for n in range(1, 12)]
    assert delays[0] == BACKOFF_BASE
    assert all(later > earlier for earlier, later in itertools.pairwise(delays[:10]))
    assert max(delays) == timedelta(hours=24)


# ---- Failures ------------------------------------------------------------------------


def test_a_failing_erp_backs_off_and_emails_once(store, admin_user, catalog, standin, worker):
    every_15(store, timezone.now())
    standin.inject(Fault("malformed_json", path="/api/stock", times=1000))
    waits = []
    for _ in range(3):
        due = next_run(store)
        (run_id,) = enqueue_due_updates(now=due).requested
        run = Run.objects.get(pk=run_id)
        assert run.status == RunStatus.FAILED
        assert run.finished_at is not None
        waits.append(next_run(store) - run.finished_at)
    schedule = Schedule.objects.get(store=store)
    assert schedule.failures == 3
    assert not schedule.is_paused
    for wait, want in zip(waits, [5, 10, 20], strict=True):
        assert timedelta(minutes=want) <= wait <= timedelta(minutes=want, seconds=5)
    # One email for the streak, not one per failure.
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["admin@sur.test"]
    assert "falló la actualización automática" in email.subject
    assert (
        f"http://localhost:8000/s/sur/integrations/erp/runs/{scheduled_runs(store)[0].pk}/"
        in email.body
    )


def test_a_wrong_password_pauses_the_schedule_and_tells_the_admins(
    store, admin_user, catalog, standin, worker, django_user_model
):
    co_admin = django_user_model.objects.create_user(
        username="compras@sur.test", email="compras@sur.test", password="x-long-password"
    )
    Membership.objects.create(store=store, user=co_admin)
    django_user_model.objects.create_user(username="otro@norte.test", email="otro@norte.test")
    standin.reset()
    standin.add_user(ERP_USER, "otra-clave")  # the store's saved password is now wrong
    catalog_password_wrong = login_attempts(standin)
    now = timezone.now()
    every_15(store, now)
    (run_id,) = enqueue_due_updates(now=now).requested
    run = Run.objects.get(pk=run_id)
    assert (run.status, run.error_code) == (RunStatus.FAILED, ErrorCode.BAD_CREDENTIALS)
    schedule = Schedule.objects.get(store=store)
    assert schedule.is_paused and schedule.next_run_at is None
    assert schedule.paused_code == ErrorCode.BAD_CREDENTIALS
    # Not retried, however long we wait: the ERP never sees another login.
    attempts = login_attempts(standin)
    assert attempts == catalog_password_wrong + 1
    for hours in (1, 6, 48):
        assert enqueue_due_updates(now=now + timedelta(hours=hours)).requested == []
    assert login_attempts(standin) == attempts
    # One email, to the store's admins only, saying what to do; never the password.
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert sorted(email.to) == ["admin@sur.test", "compras@sur.test"]
    assert "pausadas" in email.subject
    assert "Corregí el usuario o la contraseña" in email.body
    assert "http://localhost:8000/s/sur/integrations/erp/" in email.body
    assert ERP_PASSWORD not in email.body and "otra-clave" not in email.body

    # Saving the settings (with the right password) resumes it at once…
    actions.save_settings(
        store,
        kind="nonsistemas",
        url=standin.url,
        username=ERP_USER,
        password="otra-clave",
        user=admin_user,
    )
    schedule = Schedule.objects.get(store=store)
    assert not schedule.is_paused
    later = timezone.now()
    (run_id,) = enqueue_due_updates(now=later).requested
    assert Run.objects.get(pk=run_id).status == RunStatus.SUCCEEDED
    # …and the recovery is announced once.
    assert len(mail.outbox) == 2
    assert "volvieron a funcionar" in mail.outbox[1].subject
    assert Schedule.objects.get(store=store).failures == 0
    due = next_run(store)
    enqueue_due_updates(now=due)
    assert len(mail.outbox) == 2


def test_api_access_disabled_pauses_too(store, admin_user, standin, worker):
    standin.add_user("vendedor", "clave-vendedor", api_access=False)
    connect(store, standin, username="vendedor", password="clave-vendedor")
    every_15(store, timezone.now())
    (run_id,) = enqueue_due_updates().requested
    assert Run.objects.get(pk=run_id).error_code == ErrorCode.NO_API_ACCESS
    schedule = Schedule.objects.get(store=store)
    assert schedule.is_paused
    assert "habilite el acceso a la API" in mail.outbox[0].body


def test_changing_the_schedule_does_not_unpause_it(store, catalog, queue_only):
    now = timezone.now()
    every_15(store, now)
    Schedule.objects.filter(store=store).update(
        paused_at=now, paused_code=ErrorCode.BAD_CREDENTIALS, next_run_at=None
    )
    set_schedule(store, kind=ScheduleKind.EVERY, every_minutes=60, now=now)
    assert enqueue_due_updates(now=now + timedelta(days=2)).requested == []


def test_an_interrupted_or_panel_run_does_not_count_as_a_failure(store, catalog, queue_only):
    now = timezone.now()
    every_15(store, now)
    (run_id,) = enqueue_due_updates(now=now).requested
    Run.objects.filter(pk=run_id).update(
        status=RunStatus.FAILED, error_code=ErrorCode.INTERRUPTED, finished_at=now
    )
    record_outcome(Run.objects.get(pk=run_id))
    panel = Run.objects.create(
        store=store, kind="nonsistemas", origin="panel", status=RunStatus.FAILED
    )
    record_outcome(panel)
    assert Schedule.objects.get(store=store).failures == 0
    assert mail.outbox == []


# ---- Values ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["7m", "15", "2h", "", "15 m"])
def test_bad_every_values_say_which_are_allowed(value):
    with pytest.raises(BadSchedule, match="15m, 30m, 1h, 6h o 24h"):
        parse_every(value)


@pytest.mark.parametrize("value", ["25:00", "12:60", "3", "03:3", "mañana", "-1:00"])
def test_bad_daily_times_say_how_to_write_one(value):
    with pytest.raises(BadSchedule, match="HH:MM"):
        parse_daily(value)


def test_good_values_parse():
    assert [parse_every(v) for v in ("15m", "30M", " 1h", "6h", "24h")] == [15, 30, 60, 360, 1440]
    assert parse_daily("3:05") == time(3, 5)
    assert parse_daily("23:59") == time(23, 59)


def test_changing_the_schedule_is_audited_in_its_transaction(store, admin_user):
    set_schedule(store, kind=ScheduleKind.DAILY, daily_at=time(6, 0), user=admin_user)
    set_schedule(store, kind=ScheduleKind.DAILY, daily_at=time(6, 0), user=admin_user)
    events = AuditEvent.objects.filter(store=store, action=AuditAction.SCHEDULE_CHANGED)
    assert [(e.actor, e.detail) for e in events] == [
        ("admin@sur.test", "Actualizaciones automáticas: todos los días a las 06:00")
    ]


def test_notify_held_emails_only_for_automatic_runs(store, admin_user):
    held = Run.objects.create(
        store=store,
        kind="nonsistemas",
        origin="schedule",
        status=RunStatus.HELD,
        guard_findings=[{"rule": "stock_zeroed", "message": "Dejaría sin stock 812 productos."}],
    )
    assert notifications.notify_held(held) is True
    assert "Dejaría sin stock 812 productos." in mail.outbox[0].body
    assert f"/s/sur/integrations/erp/runs/{held.pk}/" in mail.outbox[0].body
    panel = Run.objects.create(store=store, kind="nonsistemas", origin="panel", status="held")
    assert notifications.notify_held(panel) is False
    assert len(mail.outbox) == 1


@pytest.mark.guard_rails
def test_a_scheduled_update_held_by_a_guard_rail_tells_the_admins_once(
    store, admin_user, standin, worker
):
    """The ERP suddenly sends stock 0 for every item: the automatic update is held
    (nothing written) and the store's admins get one email saying what to do."""
    connect(store, standin)
    rows = [(f"Fideos Tirabuzón #{n:03d}", 10 + n, "950.00") for n in range(80)]
    make_items(store, rows)
    standin.load(
        [{"codigo": sku, "stock": "0", "precio_mayorista": price} for sku, _, price in rows]
    )
    now = timezone.now()
    every_15(store, now)
    (run_id,) = enqueue_due_updates(now=now).requested
    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.HELD and run.origin == "schedule"
    assert sorted(Item.objects.values_list("stock", flat=True)) == sorted(s for _, s, _ in rows)
    assert len(mail.outbox) == 1
    assert "retenida" in mail.outbox[0].subject
    assert f"/s/sur/integrations/erp/runs/{run.pk}/" in mail.outbox[0].body


def test_the_erp_page_shows_the_next_automatic_update(store, admin_client, catalog):
    now = timezone.now()
    schedule = every_15(store, now)
    schedule.next_run_at = datetime(2026, 12, 24, 13, 45, tzinfo=UTC)
    schedule.save()
    page = admin_client.get("/s/sur/integrations/erp/").content.decode()
    assert "Próxima actualización automática" in page
    # The store's time zone (Buenos Aires, UTC-3).
    assert "24/12/2026 10:45" in page
