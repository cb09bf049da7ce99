"""A run's changes and issues as CSV downloads, and a run as JSON for the CLI.

The CSVs are streamed row by row from a database iterator: a run can hold
300,000 changes, which must not be loaded into memory nor into one string.
"""

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime, tzinfo
from typing import Any

from django.http import StreamingHttpResponse

from catalog.models import ItemChange
from erp.actions import requested_by_label
from erp.models import IssueKind, Run

CHANGES_HEADER = ["sku", "name", "old_stock", "new_stock", "old_price", "new_price", "at"]
# kind_label: the kind as the run page words it, in Spanish, for whoever opens the
# file in a spreadsheet; `kind` stays the code, for whoever filters by it.
ISSUES_HEADER = ["kind", "code", "sku", "reason", "kind_label"]
# Spreadsheets run a cell that starts with one of these as a formula; SKUs, names
# and codes come from the ERP, so a hostile value could otherwise execute in the
# admin's Excel (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2000


def _text(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def _blank(value: Any) -> str:
    return "" if value is None else str(value)


class _Echo:
    """A file-like object whose write() returns the line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def change_rows(run: Run, tz: tzinfo) -> Iterator[list[str]]:
    yield CHANGES_HEADER
    rows = (
        ItemChange.objects.filter(run=run)
        .order_by("id")
        .values_list(
            "item__sku", "item__name", "old_stock", "new_stock", "old_price", "new_price", "at"
        )
    )
    for sku, name, old_stock, new_stock, old_price, new_price, at in rows.iterator(CHUNK):
        yield [
            _text(sku),
            _text(name),
            _blank(old_stock),
            _blank(new_stock),
            _blank(old_price),
            _blank(new_price),
            at.astimezone(tz).isoformat(timespec="seconds"),
        ]


def issue_rows(run: Run, kind: str | None = None) -> Iterator[list[str]]:
    yield ISSUES_HEADER
    issues = run.issues.order_by("id")
    if kind:
        issues = issues.filter(kind=kind)
    labels = dict(IssueKind.choices)
    for issue_kind, code, sku, reason in issues.values_list(
        "kind", "code", "sku", "reason"
    ).iterator(CHUNK):
        yield [
            issue_kind,
            _text(code),
            _text(sku),
            _text(reason),
            str(labels.get(issue_kind, issue_kind)),
        ]


def csv_response(rows: Iterable[list[str]], filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        # A BOM, so that Excel (what most admins open a CSV with) reads the
        # accents as UTF-8 instead of Windows-1252.
        yield "\ufeff"
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


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
        "error_code": run.error_code,
        "error_message": run.error_message,
    }
