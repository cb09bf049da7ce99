"""Scheduled updates (issue #10): when each store is due, who claims it, and what a
scheduled run's outcome does to its schedule.

The clock is django-crontask (`vxm scheduler`), which enqueues the task
`erp.tasks.enqueue_due_updates` every minute; a worker runs it, and it calls
`enqueue_due_updates` here. All the state is in `erp.Schedule` rows:

- A store is due when its `next_run_at` has passed. A tick claims it by moving
  `next_run_at` to the next regular slot with a conditional UPDATE (`WHERE
  next_run_at = <what this tick read>`): of two ticks (two scheduler processes, or
  a late tick overlapping the next) exactly one changes the row, and only that one
  requests the run, in the same transaction as the claim.
- The next slot is computed from *now*, never by adding intervals to the last
  one: after hours of downtime a store gets one catch-up run, not one per missed slot.
- Slots are spread: a store every N minutes runs at a fixed offset within the N
  minutes derived from its id, so thousands of stores "every 15 minutes" do not
  all fire at :00 (a daily one within the 5 minutes after its time).
- A run is requested through `engine.request_update(origin="schedule")`, the path
  of the panel's button: the one-active-run constraint applies, and a store whose
  update is still going is simply skipped until its next slot.
- Each tick handles at most `TICK_BATCH` stores, the most overdue first; the rest
  wait for the next tick.

`record_outcome` is called by the task once a scheduled run has ended: a success
resets the failures; a failure retries later with exponential backoff; a failure
only the admin can fix (`PAUSING_CODES`) pauses the schedule until the ERP
settings are saved again (`resume_after_settings_saved`, called by
`actions.save_settings`), so a wrong password is never retried until the ERP
locks the store's user. The admins are emailed on the first failure of a streak,
on a pause and on the recovery (erp/notifications.py), never on routine success.
"""

import logging
import math
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from erp import notifications
from erp.actions import audit
from erp.engine import NotConnected, UpdateAlreadyRunning, request_update
from erp.errors import ErrorCode
from erp.models import AuditAction, Run, RunStatus, Schedule, ScheduleKind
from stores.models import Store

logger = logging.getLogger("erp.schedule")

# `--every` values (CLI and form) → minutes.
EVERY_CHOICES: dict[str, int] = {"15m": 15, "30m": 30, "1h": 60, "6h": 360, "24h": 1440}
EVERY_LABELS = {
    15: gettext_lazy("cada 15 minutos"),
    30: gettext_lazy("cada 30 minutos"),
    60: gettext_lazy("cada hora"),
    360: gettext_lazy("cada 6 horas"),
    1440: gettext_lazy("cada 24 horas"),
}
# A daily schedule runs within this long after its time (spread by store).
DAILY_SPREAD_SECONDS = 5 * 60
# How many due stores one tick requests at most (the most overdue first).
TICK_BATCH = 500
# Retry after the n-th failure in a row: 5 min, 10, 20, 40 … at most a day.
BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_CAP = timedelta(hours=24)

# Failures that trying again cannot fix until someone changes the settings, and
# whose retries would hurt: a wrong password retried every few minutes locks the
# store's API user in NonSistemas. TLS and NOT_ERP are also `permanent`, but
# the ERP's provider fixes those on its side (a certificate, a proxy) without
# anyone saving the settings here, and retrying them sends no password: they back off.
PAUSING_CODES = {
    ErrorCode.BAD_CREDENTIALS,
    ErrorCode.NO_API_ACCESS,
    ErrorCode.URL_NOT_ALLOWED,
    ErrorCode.MALFORMED_URL,
    ErrorCode.SECRET_UNREADABLE,
}
# What the admin does about a pause (the run's own message says what happened).
PAUSE_ADVICE = {
    ErrorCode.BAD_CREDENTIALS: gettext_lazy(
        "Corregí el usuario o la contraseña de la API y guardá la configuración: "
        "las actualizaciones automáticas vuelven a empezar solas."
    ),
    ErrorCode.NO_API_ACCESS: gettext_lazy(
        "Pedile al administrador de NonSistemas que habilite el acceso a la API para ese "
        "usuario (o usá otro) y guardá la configuración de nuevo."
    ),
    ErrorCode.URL_NOT_ALLOWED: gettext_lazy(
        "Corregí la URL del ERP con la que te dio tu proveedor y guardá la configuración."
    ),
    ErrorCode.MALFORMED_URL: gettext_lazy(
        "Corregí la URL del ERP con la que te dio tu proveedor y guardá la configuración."
    ),
    ErrorCode.SECRET_UNREADABLE: gettext_lazy(
        "Volvé a escribir la contraseña de la API en la configuración y guardala."
    ),
}
DEFAULT_PAUSE_ADVICE = gettext_lazy(
    "Revisá la configuración del ERP y guardala: las actualizaciones automáticas vuelven a "
    "empezar solas."
)


class BadSchedule(ValueError):
    """A schedule value that is not one of the allowed ones (the message says which are)."""


def parse_every(value: str) -> int:
    minutes = EVERY_CHOICES.get(value.strip().lower())
    if minutes is None:
        raise BadSchedule(
            _("«%(value)s» no es una frecuencia válida: usá 15m, 30m, 1h, 6h o 24h.")
            % {"value": value}
        )
    return minutes


def parse_daily(value: str) -> time:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise BadSchedule(
            _("«%(value)s» no es una hora válida: usá HH:MM de 24 horas, por ejemplo 03:30.")
            % {"value": value}
        )
    return time(int(match[1]), int(match[2]))


def describe(schedule: Schedule | None) -> str:
    """The schedule in words: «cada 15 minutos», «todos los días a las 03:00»."""
    if schedule is None or schedule.kind == ScheduleKind.OFF:
        return _("desactivadas")
    if schedule.kind == ScheduleKind.DAILY and schedule.daily_at is not None:
        return _("todos los días a las %(time)s") % {"time": f"{schedule.daily_at:%H:%M}"}
    return str(EVERY_LABELS.get(schedule.every_minutes or 0, schedule.every_minutes))


def pause_advice(schedule: Schedule) -> str:
    return str(PAUSE_ADVICE.get(schedule.paused_code, DEFAULT_PAUSE_ADVICE))  # type: ignore[call-overload]


def schedule_of(store: Store) -> Schedule | None:
    return Schedule.objects.filter(store=store).select_related("last_run").first()


# ---- Slots ---------------------------------------------------------------------


def spread(store_id: int, span_seconds: int) -> int:
    """A fixed offset in [0, span) for the store: deterministic, evenly spread."""
    return zlib.crc32(f"vxm-schedule:{store_id}".encode()) % span_seconds


def next_regular_run(schedule: Schedule, now: datetime) -> datetime | None:
    """The schedule's next slot after `now` (None when it is off).

    Every N minutes: the store's slots are its offset plus multiples of N (counted
    from the epoch), and the next is the first at least N/2 away, so a run just
    requested off the grid (the first one, a catch-up) is not followed by another
    a minute later. Daily: the time in the store's time zone (today's or
    tomorrow's), plus its spread.
    """
    if schedule.kind == ScheduleKind.EVERY and schedule.every_minutes:
        interval = schedule.every_minutes * 60
        offset = spread(schedule.store_id, interval)
        earliest = now.timestamp() + interval / 2
        slot = math.ceil((earliest - offset) / interval) * interval + offset
        return datetime.fromtimestamp(slot, UTC)
    if schedule.kind == ScheduleKind.DAILY and schedule.daily_at is not None:
        tz = schedule.store.tz
        spread_by = timedelta(seconds=spread(schedule.store_id, DAILY_SPREAD_SECONDS))
        today = now.astimezone(tz).date()
        for day in (today, today + timedelta(days=1), today + timedelta(days=2)):
            at = _local(day, schedule.daily_at, tz) + spread_by
            if at > now:
                return at
    return None


def _local(day: date, at: time, tz: Any) -> datetime:
    # zoneinfo resolves a time skipped or repeated by a DST change (fold=0).
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def backoff(failures: int) -> timedelta:
    """How long after the n-th failure in a row the next try waits."""
    return min(BACKOFF_BASE * 2 ** min(max(failures, 1) - 1, 20), BACKOFF_CAP)


# ---- Changing it -----------------------------------------------------------------


def set_schedule(
    store: Store,
    *,
    kind: str,
    every_minutes: int | None = None,
    daily_at: time | None = None,
    user: Any = None,
    now: datetime | None = None,
) -> Schedule:
    """Set the store's schedule, audited in the same transaction.

    A schedule that changed (or was just turned on) is due at once, so the store
    gets its first scheduled run within a minute; a paused one stays paused (only
    saving the ERP settings resumes it).
    """
    now = now or timezone.now()
    if kind == ScheduleKind.EVERY and every_minutes not in EVERY_LABELS:
        raise BadSchedule(_("Elegí una frecuencia: 15m, 30m, 1h, 6h o 24h."))
    if kind == ScheduleKind.DAILY and daily_at is None:
        raise BadSchedule(_("Indicá la hora, por ejemplo 03:00."))
    if kind not in ScheduleKind.values:
        raise BadSchedule(_("Tipo de programación desconocido."))
    with transaction.atomic():
        schedule, _created = Schedule.objects.select_for_update().get_or_create(store=store)
        before = (schedule.kind, schedule.every_minutes, schedule.daily_at)
        schedule.kind = kind
        schedule.every_minutes = every_minutes if kind == ScheduleKind.EVERY else None
        schedule.daily_at = (
            daily_at.replace(second=0, microsecond=0)
            if kind == ScheduleKind.DAILY and daily_at
            else None
        )
        changed = before != (schedule.kind, schedule.every_minutes, schedule.daily_at)
        if kind == ScheduleKind.OFF or schedule.is_paused:
            schedule.next_run_at = None
        elif changed or schedule.next_run_at is None:
            schedule.next_run_at = now
        schedule.save()
        if changed:
            # Stored, like every audit detail, in the product's source language
            # whatever the language of the request that changed it.
            with translation.override("es"):
                detail = _("Actualizaciones automáticas: %(schedule)s") % {
                    "schedule": describe(schedule)
                }
            audit(store, user, AuditAction.SCHEDULE_CHANGED, detail)
    return schedule


def resume_after_settings_saved(store: Store) -> None:
    """The ERP settings were saved: a paused schedule may run again, at once.

    Called inside `actions.save_settings`' transaction. The failure count is kept,
    so the first success afterwards is announced as a recovery.
    """
    Schedule.objects.filter(store=store, paused_at__isnull=False).exclude(
        kind=ScheduleKind.OFF
    ).update(paused_at=None, paused_code="", paused_reason="", next_run_at=timezone.now())
    Schedule.objects.filter(store=store, paused_at__isnull=False, kind=ScheduleKind.OFF).update(
        paused_at=None, paused_code="", paused_reason=""
    )


# ---- The tick ---------------------------------------------------------------------


@dataclass
class TickResult:
    requested: list[int]  # run ids
    busy: int = 0  # due stores whose previous update was still going
    lost: int = 0  # due stores another tick claimed first
    failed: int = 0  # due stores whose request failed (logged)


def enqueue_due_updates(*, now: datetime | None = None, batch: int = TICK_BATCH) -> TickResult:
    """Request an update for each store that is due (at most `batch`), once.

    Each store is claimed and its run requested in one transaction, so a run is
    never requested for a store another tick already claimed, nor a claim kept
    whose request rolled back.
    """
    now = now or timezone.now()
    result = TickResult(requested=[])
    due = list(
        Schedule.objects.filter(next_run_at__lte=now, paused_at__isnull=True)
        .exclude(kind=ScheduleKind.OFF)
        .select_related("store")
        .order_by("next_run_at", "pk")[:batch]
    )
    for schedule in due:
        with transaction.atomic():
            claimed = Schedule.objects.filter(
                pk=schedule.pk, next_run_at=schedule.next_run_at, paused_at__isnull=True
            ).update(next_run_at=next_regular_run(schedule, now))
            if not claimed:
                result.lost += 1
                continue
            try:
                run = request_update(schedule.store, user=None, origin="schedule")
            except UpdateAlreadyRunning:
                # Never two at once: this slot is skipped, the next one stands.
                result.busy += 1
                continue
            except NotConnected:
                result.failed += 1
                continue
            except Exception:
                # request_update's own transaction rolled back; the claim stays,
                # so a store whose request crashes is not retried every minute.
                logger.exception("scheduled update of store %s not requested", schedule.store_id)
                result.failed += 1
                continue
            Schedule.objects.filter(pk=schedule.pk).update(last_run=run)
            result.requested.append(run.pk)
    if result.requested or result.busy or result.failed:
        logger.info(
            "scheduled updates: %d requested, %d still running, %d failed, %d claimed elsewhere",
            len(result.requested),
            result.busy,
            result.failed,
            result.lost,
        )
    return result


# ---- Outcomes ---------------------------------------------------------------------


def record_outcome(run: Run, *, now: datetime | None = None) -> None:
    """What a finished scheduled run means for its store's schedule (see the module doc).

    Other runs (panel, CLI), runs not finished, and runs stopped because their
    worker was (INTERRUPTED: a deploy, not the store's fault) change nothing.
    """
    if run.origin != "schedule":
        return
    succeeded = run.status in (RunStatus.SUCCEEDED, RunStatus.WARNINGS)
    failed = run.status == RunStatus.FAILED and run.error_code != ErrorCode.INTERRUPTED
    if not (succeeded or failed):
        return
    now = now or timezone.now()
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_for_update()
            .select_related("store")
            .filter(store_id=run.store_id)
            .first()
        )
        if schedule is None:
            return
        if succeeded:
            if schedule.failures:
                schedule.failures = 0
                schedule.save(update_fields=["failures", "updated_at"])
                transaction.on_commit(lambda: notifications.notify_recovered(run))
            return
        schedule.failures += 1
        fields = ["failures", "updated_at"]
        if run.error_code in PAUSING_CODES:
            if not schedule.is_paused:
                schedule.paused_at = now
                schedule.paused_code = run.error_code
                schedule.paused_reason = run.error_message
                schedule.next_run_at = None
                fields += ["paused_at", "paused_code", "paused_reason", "next_run_at"]
                transaction.on_commit(lambda: notifications.notify_paused(run, schedule))
        else:
            if schedule.is_on and not schedule.is_paused:
                schedule.next_run_at = now + backoff(schedule.failures)
                fields.append("next_run_at")
            if schedule.failures == 1:
                transaction.on_commit(lambda: notifications.notify_failed(run, schedule))
        schedule.save(update_fields=fields)
