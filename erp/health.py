"""The integration at a glance (issue #12, item 5): what the ERP page opens on,
and the line of the catalog that says when stock and prices last came from the ERP.

Every figure here is read from a few rows, never counted over the store's history:
the runs by the (store, finished_at) indexes, the codes with no product from a
run's own counter; only the ambiguous SKUs read the whole (store, sku_key, id)
index, so their count is cached for a few minutes.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

from catalog.models import ChangeSource, Item, ItemChange, ambiguous_keys
from erp.models import Run, RunMode, RunStatus
from stores.models import Store

SUCCEEDED = [RunStatus.SUCCEEDED, RunStatus.WARNINGS]


@dataclass(frozen=True)
class Health:
    """What the ERP page says first about a store's integration."""

    # The last update that finished well (succeeded or with warnings), if any.
    last_success: Run | None
    # The last failed update, only if it came after the last success: a failure
    # that a later success fixed is no longer news.
    last_failure: Run | None
    # The last successful update that read the whole ERP (a full update, or the
    # first one, which has no watermark yet), and so saw every ERP code: its
    # `unmatched` counter is how many codes the ERP had with no store product then.
    whole_read: Run | None
    # How many groups of store SKUs share one key (the ERP updates none of them).
    ambiguous_groups: int
    # The next automatic update, when the store has a schedule (helper c's
    # schedules fill it at merge; None: no automatic update).
    next_update: datetime | None = None
    now: datetime = field(default_factory=timezone.now)

    @property
    def unmatched_codes(self) -> int | None:
        return None if self.whole_read is None else self.whole_read.unmatched

    @property
    def level(self) -> str:
        """ "ok", "attention" (the last update failed) or "unknown" (none finished)."""
        if self.last_failure is not None:
            return "attention"
        return "ok" if self.last_success is not None else "unknown"


def _updates(store: Store) -> QuerySet[Run]:
    # Updates only: a preview writes nothing and an undo puts old values back, so
    # neither says when the catalog last received the ERP's stock and prices.
    return Run.objects.filter(store=store, mode=RunMode.UPDATE, finished_at__isnull=False).order_by(
        "-finished_at", "-id"
    )


def last_success(store: Store) -> Run | None:
    """The store's last update that finished well, newest by when it finished."""
    return _updates(store).filter(status__in=SUCCEEDED).select_related("requested_by").first()


# How long the ambiguous-SKU count is reused. Counting it reads every item's key
# (a whole index of 300,000 entries: benchmarks/erp_health.py), too slow for each
# view of the ERP page; groups change only when items are created or deleted, and
# the list behind the link is always exact.
AMBIGUOUS_COUNT_TTL = 300


def ambiguous_group_count(store: Store, *, fresh: bool = False) -> int:
    """How many SKU keys more than one store item has: the groups of
    `vxm catalog ambiguous` (catalog.models.ambiguous_groups), counted in SQL and
    kept in the cache for AMBIGUOUS_COUNT_TTL seconds (`fresh` counts again)."""
    key = f"erp-health-ambiguous-groups:{store.pk}"
    count = None if fresh else cache.get(key)
    if count is None:
        count = ambiguous_keys(store).count()
        cache.set(key, count, AMBIGUOUS_COUNT_TTL)
    return int(count)


def health(store: Store, *, next_update: datetime | None = None) -> Health:
    """The integration's health for the ERP page. `next_update` is the next
    automatic update, when the caller knows one (schedules)."""
    success = last_success(store)
    failures = _updates(store).filter(status=RunStatus.FAILED)
    if success is not None and success.finished_at is not None:
        failures = failures.filter(finished_at__gt=success.finished_at)
    whole = (
        success
        if success is not None and success.desde is None
        else _updates(store).filter(status__in=SUCCEEDED, desde__isnull=True).first()
    )
    return Health(
        last_success=success,
        last_failure=failures.first(),
        whole_read=whole,
        ambiguous_groups=ambiguous_group_count(store),
        next_update=next_update,
    )


def ago(when: datetime, now: datetime | None = None) -> str:
    """ "hace 12 minutos": how long ago, in its largest unit (a minute at least)."""
    now = now or timezone.now()
    if (now - when).total_seconds() < 60:
        return _("hace menos de un minuto")
    return _("hace %(tiempo)s") % {"tiempo": timesince(when, now, depth=1)}


@dataclass(frozen=True)
class LastErpUpdate:
    """When the store's stock and prices last came from its ERP: the catalog's line."""

    run: Run
    at: datetime  # in the store's time zone
    ago: str


def last_erp_update(store: Store) -> LastErpUpdate | None:
    run = _updates(store).filter(status__in=SUCCEEDED).only("id", "finished_at").first()
    if run is None or run.finished_at is None:
        return None
    return LastErpUpdate(run, timezone.localtime(run.finished_at, store.tz), ago(run.finished_at))


def last_erp_change(item: Item) -> ItemChange | None:
    """The item's newest change that came from the ERP (its history, by the
    (item, -at) index), with the run that made it."""
    return (
        item.changes.filter(source=ChangeSource.ERP)
        .order_by("-at", "-id")
        .only("at", "run_id", "old_stock", "new_stock", "old_price", "new_price")
        .first()
    )
