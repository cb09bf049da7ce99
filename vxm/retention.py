"""Retention: history, runs and finished imports older than `VXM_RETENTION_DAYS` are
deleted, so the database does not grow without bound (issue #10).

What goes, by which timestamp (docs/architecture.md, "Retention"):

* `catalog.ItemChange` by `at` (when the change was made).
* `erp.Run` by when it ended (`finished_at`, or `created_at` for a run that never
  started), with its `RunIssue` rows (they have no time of their own and mean nothing
  without their run). A run ends after every change it made, so its history rows are
  always pruned with it or before it. Never pruned: a queued or running run, a held
  one (waiting for a person), and each store's newest successful update (the
  integrations page reports it, and the next one is compared with it).
* `catalog.CatalogImport` (its report; the file's bytes are dropped when it finishes)
  by `finished_at`; a queued or running import is never pruned.
* `erp.AuditEvent` by `at`, with its own, longer horizon (`VXM_AUDIT_RETENTION_DAYS`,
  default five years; 0 keeps it forever): it is the security record of who changed
  the ERP settings and who applied, discarded or undid an update, asked for long
  after the data it is about.

How: in batches, each its own short transaction, so a pass never holds locks for
long nor writes one huge WAL. Time-ordered tables are walked by primary-key ranges
(`id` between lo and lo + batch - 1, filtered by time): every batch is a primary-key
range scan, never a scan of the table. The range stops at the newest old row's id,
found once per pass through the timestamp's index. Runs and their issues go a
bounded number at a time too. Between batches the pass stops if the process was
asked to end (SIGTERM, Ctrl-C: `erp.stopping`), keeping what it deleted. Running it
again, or in two processes at once, is harmless: a batch deletes only what is still
there and still old.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models import Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from catalog.models import CatalogImport, ImportStatus, ItemChange
from erp import stopping
from erp.models import AuditEvent, Run, RunIssue, RunMode, RunStatus

BATCH_SIZE = 10_000
# Runs are deleted this many at a time (their issues first, in BATCH_SIZE batches).
RUN_BATCH_SIZE = 500

# Statuses whose runs are never pruned: still working, or waiting for a person.
KEPT_STATUSES = [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.HELD]
SUCCESSFUL_STATUSES = [RunStatus.SUCCEEDED, RunStatus.WARNINGS]

# The tables, in the order a pass prunes them (the keys of `vxm prune --json`), and
# what the report calls them.
TABLES = ("item_changes", "run_issues", "runs", "imports", "audit_events")
LABELS = {
    "item_changes": _("historial de productos"),
    "run_issues": _("no aplicados de actualizaciones"),
    "runs": _("actualizaciones"),
    "imports": _("importaciones CSV"),
    "audit_events": _("auditoría del ERP"),
}


@dataclass
class PruneReport:
    """What a pass deleted (or, dry, would delete), per table."""

    cutoff: datetime
    audit_cutoff: datetime | None
    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    batches: int = 0
    # The longest single batch (one transaction), in seconds.
    longest_batch: float = 0.0
    seconds: float = 0.0
    # The signal that stopped the pass between two batches, if one did.
    stopped_by: int | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def retention_days() -> int:
    days = int(settings.VXM_RETENTION_DAYS)
    # 0 would delete the whole history at the next pass: never read it as "all".
    if days < 1:
        raise ImproperlyConfigured(
            _("VXM_RETENTION_DAYS tiene que ser un número de días mayor que 0, como 400.")
        )
    return days


def audit_retention_days() -> int:
    days = int(settings.VXM_AUDIT_RETENTION_DAYS)
    if days < 0:
        raise ImproperlyConfigured(
            _(
                "VXM_AUDIT_RETENTION_DAYS tiene que ser un número de días, como 1825, "
                "o 0 para guardar la auditoría para siempre."
            )
        )
    return days


def cutoff_for(days: int, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=days)


def history_pruned(run: Run) -> bool:
    """Whether the run's history rows may be gone because they grew old: the run
    page says so instead of "changed nothing" (a store's newest successful run is
    kept past the retention, its history is not)."""
    ended = run.finished_at or run.created_at
    return ended < cutoff_for(retention_days())


class _Pass:
    def __init__(self, report: PruneReport, batch_size: int, run_batch_size: int) -> None:
        self.report = report
        self.batch_size = batch_size
        self.run_batch_size = run_batch_size

    def batch(self, table: str, delete: Callable[[], int]) -> int:
        """One batch in its own transaction; stop first if the process was asked to."""
        stopping.check()
        started = time.monotonic()
        with transaction.atomic():
            deleted = delete()
        self.report.longest_batch = max(self.report.longest_batch, time.monotonic() - started)
        self.report.batches += 1
        self.report.counts[table] += deleted
        return deleted

    def by_time(self, table: str, model: type[models.Model], stamp: str, old: Q) -> None:
        """Delete `model` rows matching `old` (`stamp` before the horizon) in
        primary-key ranges."""
        rows = model._default_manager.filter(old)
        if self.report.dry_run:
            self.report.counts[table] += rows.count()
            return
        # Where the walk ends: the highest id among the newest old rows, read through
        # the timestamp's index (a short walk back from the horizon). Not MAX(id) of
        # all old rows: PostgreSQL answers that by walking the primary key back from
        # the newest row through every row that is not old (8 s at 10 million). Rows
        # are written with `at` = now, so ids and times go up together; a row stamped
        # far older than when it was written goes once a row written after it is old.
        newest_old = rows.order_by(f"-{stamp}").values_list("pk", flat=True)[: self.batch_size]
        last = max(newest_old, default=None)
        if last is None:
            return
        first = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
        if first is None:
            return
        for lo in range(first, last + 1, self.batch_size):
            hi = min(lo + self.batch_size - 1, last)
            self.batch(table, partial(_delete, rows.filter(pk__gte=lo, pk__lte=hi)))

    def runs(self, old: Q) -> None:
        # Each store's newest successful update is kept whatever its age.
        newest = (
            Run.objects.filter(status__in=SUCCESSFUL_STATUSES, mode=RunMode.UPDATE)
            .order_by()
            .values("store")
            .annotate(newest=Max("pk"))
            .values_list("newest", flat=True)
        )
        prunable = (
            Run.objects.annotate(ended=Coalesce("finished_at", "created_at"))
            .filter(old)
            .exclude(status__in=KEPT_STATUSES)
        )
        if self.report.dry_run:
            counted = prunable.exclude(pk__in=newest)
            self.report.counts["runs"] += counted.count()
            self.report.counts["run_issues"] += RunIssue.objects.filter(
                run__in=counted.values("pk")
            ).count()
            return
        kept = set(newest)  # one per store: read once per pass
        after = 0
        while True:
            candidates = list(
                prunable.filter(pk__gt=after)
                .order_by("pk")
                .values_list("pk", flat=True)[: self.run_batch_size]
            )
            if not candidates:
                return
            after = candidates[-1]
            ids = [pk for pk in candidates if pk not in kept]
            if not ids:
                continue
            # Their issues first, a bounded number per transaction: a full update can
            # leave 100,000 of them.
            issues = RunIssue.objects.filter(
                pk__in=RunIssue.objects.filter(run_id__in=ids).values("pk")[: self.batch_size]
            )
            while self.batch("run_issues", partial(_delete, issues)):
                pass
            # Then the runs, by the ORM: whatever refers to a run (an undo's `undoes`,
            # a history row's `run`) is set to NULL or deleted as its field says.
            # Re-checked here: a run that became held or active meanwhile stays.
            self.batch("runs", partial(_delete, prunable.filter(pk__in=ids), "erp.Run"))


def _delete(rows: "models.QuerySet[Any]", label: str | None = None) -> int:
    """Delete `rows`, returning how many of them (not of what cascaded) went.

    Through the ORM so that whatever refers to them is handled as its field says (a
    run's issues deleted, an undo's `undoes` and a history row's `run` set to NULL);
    for a table nothing refers to, Django sends one plain DELETE without reading the
    rows first.
    """
    __, per_model = rows.delete()
    return int(per_model.get(label or rows.model._meta.label, 0))


def prune(
    *,
    days: int | None = None,
    audit_days: int | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    run_batch_size: int = RUN_BATCH_SIZE,
    now: datetime | None = None,
) -> PruneReport:
    """Delete (dry: count) what is older than the retention. SIGTERM or Ctrl-C stop it
    between batches (the report says so); whatever it deleted stays deleted."""
    days = retention_days() if days is None else days
    audit_days = audit_retention_days() if audit_days is None else audit_days
    now = now or timezone.now()
    cutoff = cutoff_for(days, now)
    # The audit log is never pruned before the data it explains.
    audit_cutoff = cutoff_for(max(audit_days, days), now) if audit_days else None
    report = PruneReport(cutoff=cutoff, audit_cutoff=audit_cutoff, dry_run=dry_run)
    work = _Pass(report, batch_size, run_batch_size)
    started = time.monotonic()
    with stopping.stop_on_signals():
        try:
            for step in _steps(work, cutoff, audit_cutoff):
                step()
        except stopping.StopRequested as stop:
            report.stopped_by = stop.signum
    report.seconds = time.monotonic() - started
    return report


def _steps(
    work: _Pass, cutoff: datetime, audit_cutoff: datetime | None
) -> Iterator[Callable[[], None]]:
    # History first: a run ends after all its changes, so by the time a run goes its
    # history rows have gone (no UPDATE setting their run to NULL).
    yield lambda: work.by_time("item_changes", ItemChange, "at", Q(at__lt=cutoff))
    yield lambda: work.runs(Q(ended__lt=cutoff))
    yield lambda: work.by_time(
        "imports",
        CatalogImport,
        "finished_at",
        Q(finished_at__lt=cutoff, status__in=[ImportStatus.DONE, ImportStatus.FAILED]),
    )
    if audit_cutoff is not None:
        yield lambda: work.by_time("audit_events", AuditEvent, "at", Q(at__lt=audit_cutoff))
