"""An item's history on its page: newest first, paged by keyset, not by offset.

Pages are walks of the `(item, at, id)` index from a change of this item (the first
or last one shown), so the hundredth page of an item's history costs what the first
does and nothing is counted: with ten million history rows an offset and a count
would read every row before the page. A cursor that names no change of this item (a
change pruned since, another item's id, an old bookmark) shows the newest page.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from catalog.models import Item, ItemChange

PAGE_SIZE = 50
COLUMNS = ("id", "at", "source", "actor", "old_stock", "new_stock", "old_price", "new_price")


@dataclass(frozen=True)
class HistoryPage:
    rows: list[ItemChange]
    newer_than: int | None  # pass as `newer_than` for the previous (newer) page
    older_than: int | None  # pass as `older_than` for the next (older) page


def _position(item: Item, pk: int | None) -> tuple[datetime, int] | None:
    if pk is None:
        return None
    at = item.changes.filter(pk=pk).values_list("at", flat=True).first()
    return None if at is None else (at, pk)


def _older(at: datetime, pk: int) -> Q:
    # `at <= …` alone is what the index range starts from; the OR, checked on that
    # range, breaks ties between changes made at the same instant by id.
    return Q(at__lte=at) & (Q(at__lt=at) | Q(pk__lt=pk))


def _newer(at: datetime, pk: int) -> Q:
    return Q(at__gte=at) & (Q(at__gt=at) | Q(pk__gt=pk))


def history_page(
    item: Item,
    *,
    older_than: int | None = None,
    newer_than: int | None = None,
    size: int = PAGE_SIZE,
) -> HistoryPage:
    # The run (and the run an undo undid) names an undo row: "Deshacer actualización #N".
    changes: QuerySet[ItemChange] = item.changes.select_related("run").only(*COLUMNS, "run__undoes")
    newer = _position(item, newer_than)
    if newer is not None:
        rows = list(changes.filter(_newer(*newer)).order_by("at", "id")[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return HistoryPage(
            rows,
            newer_than=rows[0].pk if more_newer and rows else None,
            older_than=rows[-1].pk if rows else None,
        )
    older = _position(item, older_than)
    if older is not None:
        changes = changes.filter(_older(*older))
    rows = list(changes.order_by("-at", "-id")[: size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    return HistoryPage(
        rows,
        newer_than=rows[0].pk if older is not None and rows else None,
        older_than=rows[-1].pk if more_older else None,
    )


def cursor(value: str | None) -> int | None:
    """A cursor from the URL: an id, or None for anything else (never an error page)."""
    value = value or ""
    # isascii: "²".isdigit() is True but int("²") fails.
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None
