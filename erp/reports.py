"""A run's changes and issues as spreadsheet downloads (XLSX and Excel-ready CSV),
and a run as JSON for the CLI.

The rows are read from a database iterator: a run can hold 300,000 changes, which
must not be loaded into memory nor into one string. The CSV streams; the XLSX is
written row by row to a temporary file (vxm/spreadsheets.py).
"""

from collections.abc import Iterator
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

from catalog.models import Item, ItemChange
from erp import run_rows
from erp.actions import requested_by_label
from erp.cancel import cancelled_by_label
from erp.models import IssueKind, PlannedPage, Run, RunIssue
from erp.run_rows import of_run
from vxm.spreadsheets import Column

CHANGES_COLUMNS = (
    Column(_("SKU"), width=18),
    Column(_("Nombre"), width=40),
    Column(_("Stock anterior"), "int", width=15),
    Column(_("Stock nuevo"), "int", width=13),
    Column(_("Precio anterior"), "money", width=16),
    Column(_("Precio nuevo"), "money", width=14),
    Column(_("Fecha"), "datetime", width=20),
)
# The kind as the run page words it, so whoever opens the file reads it in Spanish.
ISSUES_COLUMNS = (
    Column(_("Tipo"), width=30),
    Column(_("Código ERP"), width=18),
    Column(_("SKU"), width=18),
    Column(_("Motivo"), width=60),
)
CHUNK = 2000


def change_rows(run: Run) -> Iterator[tuple[Any, ...]]:
    from erp.held_views import shows_plan

    if shows_plan(run):
        yield from planned_rows(run)
        return
    rows = (
        of_run(ItemChange.objects, run)
        .order_by(*run_rows.ORDER)
        .values_list(
            "item__sku", "item__name", "old_stock", "new_stock", "old_price", "new_price", "at"
        )
    )
    yield from rows.iterator(CHUNK)


def issue_rows(run: Run, kind: str | None = None) -> Iterator[tuple[Any, ...]]:
    issues = of_run(RunIssue.objects, run).order_by(*run_rows.ORDER)
    if kind:
        issues = issues.filter(kind=kind)
    labels = dict(IssueKind.choices)
    for issue_kind, code, sku, reason in issues.values_list(
        "kind", "code", "sku", "reason"
    ).iterator(CHUNK):
        yield (str(labels.get(issue_kind, issue_kind)), code, sku, reason)


def _iso(moment: datetime | None, tz: tzinfo) -> str | None:
    return None if moment is None else moment.astimezone(tz).isoformat(timespec="seconds")


def run_summary(run: Run) -> dict[str, Any]:
    """A run as one JSON object: what `vxm erp sync --json` and `runs --json` print."""
    tz = run.store.tz
    duration = run.duration
    return {
        "id": run.pk,
        "status": run.status,
        "full": run.full,
        "counts": run.counts(),
        "duration_seconds": None if duration is None else round(duration.total_seconds(), 3),
        "created_at": _iso(run.created_at, tz),
        "started_at": _iso(run.started_at, tz),
        "finished_at": _iso(run.finished_at, tz),
        "requested_by": requested_by_label(run),
        # "panel", "cli" or "schedule" (issue #10).
        "origin": run.origin,
        "error_code": run.error_code,
        "error_message": run.error_message,
        # Added by issue #12 (keys are only ever added).
        "total_items": run.total_items,
        "cancel_requested_at": _iso(run.cancel_requested_at, tz),
        "cancelled_by": cancelled_by_label(run) if run.cancel_requested_at else None,
        # Issue #11: "update" or "preview"; what a held run (or a preview) tripped.
        "mode": run.mode,
        "guard_findings": run.guard_findings,
    }


def planned_rows(run: Run) -> Iterator[tuple[Any, ...]]:
    """A preview's or held run's planned changes, in the changes' columns (no date:
    nothing was written). One plan page at a time: memory stays flat."""
    for changes in (
        PlannedPage.objects.filter(run=run)
        .order_by("seq")
        .values_list("changes", flat=True)
        .iterator(4)
    ):
        names = dict(
            Item.objects.filter(pk__in=[c[0] for c in changes]).order_by().values_list("id", "name")
        )
        for item_id, sku, old_stock, new_stock, old_price, new_price, _code in changes:
            yield (
                sku,
                names.get(item_id, ""),
                old_stock if new_stock is not None else None,
                new_stock,
                Decimal(old_price) if new_price is not None else None,
                None if new_price is None else Decimal(new_price),
                None,
            )
