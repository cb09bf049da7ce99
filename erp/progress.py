"""How far a queued or running update has got, for the pages and the terminal.

Everything is read from the run's row, which the process doing the update
writes after every page (counters, `pages`, `phase`, `total_items`), so the
panel shows the progress of a run whatever process executes it (the task
worker, `vxm erp sync`). The estimate of the rest is the plain average rate so
far: an ERP's pages come at a steady pace, and a smarter estimate would only
look more precise than it is.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from erp import registry
from erp.models import Run, RunPhase, RunStatus
from erp.sources import FeedStats

# Below this the rate is mostly the login and the first request: no estimate yet.
MIN_ELAPSED_FOR_ESTIMATE = timedelta(seconds=2)
# The screen reader hears the progress only when it crosses one of these steps
# (or the phase or state changes), not at every poll.
ANNOUNCE_STEP = 25


@dataclass(frozen=True)
class RunProgress:
    received: int
    total: int | None  # what the ERP announced; None while unknown
    percent: int | None  # 0-100, None when the total is unknown (indeterminate bar)
    phase: str  # what it is doing, in words
    pages: int
    elapsed: timedelta | None
    remaining: timedelta | None  # the estimate of the rest, when there is one
    rate: float | None  # items per second so far
    cancelling: bool
    queued: bool
    key: str  # changes only when the announcement does (see `live_announcement`)

    @property
    def shown(self) -> int:
        """The bar's value: what was received, at most the total."""
        return self.received if self.total is None else min(self.received, self.total)

    @property
    def announcement(self) -> str:
        """What the aria-live region says: coarse, so that it changes rarely."""
        if self.queued:
            return _("Actualización en cola.")
        if self.cancelling:
            return _("Cancelando la actualización.")
        if self.percent is None:
            return self.phase
        step = self.percent // ANNOUNCE_STEP * ANNOUNCE_STEP
        return _("%(phase)s: %(step)s %%.") % {"phase": self.phase, "step": step}


def phase_label(run: Run) -> str:
    erp_name = registry.provider(run.kind).name if run.kind else "el ERP"
    if run.status == RunStatus.QUEUED:
        return _("Esperando a que empiece…")
    if run.phase == RunPhase.PLANNING:
        return _("Leyendo %(erp)s") % {"erp": erp_name}
    if run.phase == RunPhase.APPLYING:
        return _("Aplicando cambios")
    # An engine that reads and applies page by page (no separate phases).
    return _("Leyendo %(erp)s y aplicando cambios") % {"erp": erp_name}


def progress_of(run: Run, now: datetime | None = None) -> RunProgress:
    now = now or timezone.now()
    total = run.total_items
    received = run.received
    percent = None
    if total is not None:
        # An ERP that sends more than it announced (edits while reading) stays at 100.
        percent = 100 if total == 0 else min(100, received * 100 // total)
    elapsed = None if run.started_at is None else max(timedelta(0), now - run.started_at)
    rate = remaining = None
    if elapsed is not None and elapsed >= MIN_ELAPSED_FOR_ESTIMATE and received:
        rate = received / elapsed.total_seconds()
        if total is not None:
            remaining = timedelta(seconds=round(max(0, total - received) / rate))
    return RunProgress(
        received=received,
        total=total,
        percent=percent,
        phase=phase_label(run),
        pages=run.pages,
        elapsed=elapsed,
        remaining=remaining,
        rate=rate,
        cancelling=run.cancel_requested_at is not None and run.status == RunStatus.RUNNING,
        queued=run.status == RunStatus.QUEUED,
        key=_key(run, percent),
    )


def _key(run: Run, percent: int | None) -> str:
    if not run.is_active:
        return f"end-{run.pk}"
    step = "" if percent is None else str(percent // ANNOUNCE_STEP)
    cancelling = "c" if run.cancel_requested_at is not None else ""
    return f"{run.pk}-{run.status}-{run.phase}-{step}{cancelling}"


def live_announcement(run: Run | None, said: str | None) -> str | None:
    """What the page's aria-live region should say now, or None to leave it.

    `said` is the key of the state the page last showed (the poll sends it
    back): the region is updated only when the coarse state changed, so a screen
    reader hears the phase, every quarter and the end, not every poll.
    """
    if run is None or said is None:
        return None
    state = progress_of(run)
    if state.key == said:
        return None
    if not run.is_active:
        return _("La actualización #%(id)s terminó: %(status)s.") % {
            "id": run.pk,
            "status": run.get_status_display(),
        }
    return state.announcement


def record_total(run: Run, stats: FeedStats) -> None:
    """A run's `progress` callback: keep the ERP's announced total on the run row,
    where the pages read it. (The engine that records it itself makes this a
    no-op: the UPDATE runs only when the value differs.)"""
    if stats.expected is not None and run.total_items != stats.expected:
        Run.objects.filter(pk=run.pk).update(total_items=stats.expected)
        run.total_items = stats.expected
