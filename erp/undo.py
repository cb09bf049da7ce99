"""Undoing an ERP update (issue #11): put back the stock and price each item had
before that run, for every item whose values are still the ones the run set.

An undo is itself a `Run` (`mode=undo`, `undoes=<the run>`): it is queued like an
update (the partial unique index "one queued or running run per store" keeps it
from overlapping an update or another undo), claimed by a conditional UPDATE,
and seen like any run (its page, the history, `vxm erp runs`, its downloads). It
never calls the ERP and never moves the watermark.

The source of truth is the undone run's history (`ItemChange` rows with its
`run_id` and source `erp`; lock and unlock rows have no run and other sources
are not the run's). Per item and field, the value before the run is the old
value of the run's *first* row that changed that field and the run's value is
the new value of its *last* one: an item named by two ERP codes ("ABC" and
" abc") changed twice goes back to what it had before the run.

The rule (docs/sync-correctness.md, U1): an item is restored only if every field
the run changed still holds the run's value. Anything else means someone or
something changed it afterwards (a manual edit, a CSV import, a later update):
it is left as it is and listed (`changed_meanwhile`) with what it has now. An
item already back at its values from before is counted unchanged. Items locked
against the ERP are restored too: the lock is against the ERP, and an undo is
the admin's own action, like a manual edit or a CSV import, which also change a
locked item.

It works in pages of the undone run's history (`PAGE_ROWS` rows by id, so
memory stays flat for 100,000 changes); each page is one transaction like an
update's page (R5, R6): the store's bulk-write lock, the items row-locked
(`SELECT … FOR UPDATE`) and compared inside it, the bulk UPDATE, the history rows
(source `undo`, the undo run's id, who asked), the issues and the undo run's
counters and heartbeat, the last conditional on the undo still running. SIGTERM
or Ctrl-C stop it between pages (erp/stopping.py); a later undo of the same run
finishes the job (what was already put back counts as unchanged).
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from catalog.models import ChangeSource, Item, ItemChange
from catalog.templatetags.money import money, thousands
from catalog.writes import CatalogWriter, Change
from erp import stopping
from erp.engine import beating, expire_stale_runs, heartbeat
from erp.errors import ErpError, ErrorCode
from erp.models import (
    ACTIVE_STATUSES,
    AuditAction,
    AuditEvent,
    IssueKind,
    Run,
    RunIssue,
    RunMode,
    RunStatus,
)
from stores.models import Membership, Store

logger = logging.getLogger("erp.undo")

# History rows of the undone run read per page (and so items per transaction, at most).
PAGE_ROWS = 1000

# A run whose pages were really applied: these may be undone. A failed,
# interrupted or cancelled update applied whole pages before it stopped (R5).
UNDOABLE_STATUSES = (
    RunStatus.SUCCEEDED,
    RunStatus.WARNINGS,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
)
# An undo that reached its end: the run it undid cannot be undone again. A failed
# or interrupted undo can be asked again; it finishes what the first one left.
DONE_STATUSES = (RunStatus.SUCCEEDED, RunStatus.WARNINGS)

# Shown on the run page and by the CLI, in the reader's language.
NOTHING_IN_ERP = gettext_lazy(
    "Deshacer no cambia nada en NonSistemas: la próxima actualización completa vuelve a "
    "traer sus valores."
)
STOPPED = (
    "Deshacer se detuvo porque el proceso que lo hacía recibió la orden de terminar "
    "({signal}). Lo que alcanzó a volver atrás quedó registrado; pedí «Deshacer» de nuevo "
    "sobre la misma actualización para terminar."
)
CRASHED = (
    "Deshacer falló por un error interno nuestro. Lo que alcanzó a volver atrás quedó "
    "registrado; probá de nuevo en unos minutos y, si se repite, escribinos."
)


class UndoRefused(Exception):
    """The run cannot be undone (now); the message says why and what to do."""

    def __init__(self, message: str, *, busy: Run | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.busy = busy


def successful_undo(run: Run) -> Run | None:
    """The undo that already put `run` back, if any."""
    return (
        Run.objects.filter(undoes=run, mode=RunMode.UNDO, status__in=DONE_STATUSES)
        .order_by("-id")
        .first()
    )


def _changes_of(run: Run) -> Any:
    return ItemChange.objects.filter(run_id=run.pk, source=ChangeSource.ERP)


def refusal(run: Run) -> str:
    """Why `run` cannot be undone, in words for its admin; "" if it can (as far as
    the run itself goes: another run in progress is found out when asking)."""
    if run.mode == RunMode.PREVIEW:
        return _("Es una vista previa: no cambió nada en la tienda, no hay nada que deshacer.")
    if run.mode == RunMode.UNDO:
        return _(
            "Esto ya es un «Deshacer» y no se deshace. Para volver a los valores de "
            "NonSistemas, hacé una actualización completa."
        )
    if run.status == RunStatus.HELD:
        return _("Está retenida: todavía no cambió nada. Aplicala o descartala desde esta página.")
    if run.status == RunStatus.DISCARDED:
        return _("Se descartó sin aplicarse: no cambió nada, no hay nada que deshacer.")
    if run.status in ACTIVE_STATUSES:
        return _("Todavía está en curso; esperá a que termine.")
    if run.status not in UNDOABLE_STATUSES:
        return _("Esta actualización no se puede deshacer.")
    done = successful_undo(run)
    if done is not None:
        return _("Ya se deshizo en #%(id)s.") % {"id": done.pk}
    if not _changes_of(run).exists():
        return _("No cambió ningún producto: no hay nada que deshacer.")
    return ""


def items_changed(run: Run) -> int:
    """How many store items the run changed (an item changed twice counts once)."""
    return _changes_of(run).values("item_id").distinct().count()


def _actor(user: Any, origin: str) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.email or user.username)
    return {"cli": "Línea de comandos"}.get(origin, origin)


def request_undo(
    store: Store,
    run_id: int,
    *,
    user: Any = None,
    origin: str = "panel",
    enqueue: bool = True,
) -> Run:
    """Record a queued undo of the store's run `run_id` and its audit row in one
    transaction; enqueue its task once committed (`enqueue`) or leave it for the
    caller to execute (`execute_undo`, the CLI). Raises UndoRefused."""
    target = Run.objects.filter(pk=run_id, store=store).first()
    if target is None:
        raise UndoRefused(
            _("La tienda %(store)s no tiene una actualización #%(id)s.")
            % {"store": store.slug, "id": run_id}
        )
    expire_stale_runs(store)
    target.refresh_from_db()
    why = refusal(target)
    if why:
        raise UndoRefused(
            _("No se puede deshacer la actualización #%(id)s: %(why)s")
            % {"id": target.pk, "why": why}
        )
    requested_by = user if user is not None and user.is_authenticated else None
    try:
        with transaction.atomic():
            run = Run.objects.create(
                store=store,
                kind=target.kind,
                mode=RunMode.UNDO,
                undoes=target,
                requested_by=requested_by,
                origin=origin,
            )
            AuditEvent.objects.create(
                store=store,
                user=requested_by,
                actor=_actor(user, origin),
                action=AuditAction.UNDO_REQUESTED,
                detail=f"Deshacer la actualización #{target.pk} (#{run.pk})",
            )
            if enqueue:
                from erp.tasks import run_undo

                undo_id = run.pk
                transaction.on_commit(lambda: run_undo.enqueue(undo_id))
    except IntegrityError:
        busy = Run.objects.filter(store=store, status__in=ACTIVE_STATUSES).first()
        if busy is None:  # it finished in between: the caller may ask again
            raise
        raise UndoRefused(
            _("Hay una actualización en curso (#%(id)s); esperá a que termine.") % {"id": busy.pk},
            busy=busy,
        ) from None
    return run


def execute_undo(run_id: int) -> Run:
    """Claim and perform a queued undo; return it with its outcome recorded."""
    now = timezone.now()
    claimed = Run.objects.filter(pk=run_id, mode=RunMode.UNDO, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now
    )
    if claimed:
        with stopping.stop_on_signals(), beating(run_id):
            _perform(run_id)
    return Run.objects.select_related("store", "undoes").get(pk=run_id)


@dataclass
class Counts:
    """What the undo did so far; saved with every page."""

    matched: int = 0  # items of the undone run looked at
    stock_changed: int = 0  # stocks put back
    price_changed: int = 0  # prices put back
    unchanged: int = 0  # already back at the values from before
    changed_meanwhile: int = 0  # left alone: changed after the run

    def as_fields(self) -> dict[str, int]:
        return dict(self.__dict__)


def _net_changes(
    target_id: int, item_ids: list[int]
) -> dict[int, tuple[int, tuple[int, int] | None, tuple[Decimal, Decimal] | None]]:
    """(first history id, stock, price) by item: the first old value and the last new
    value of each field the run changed, over all its rows of these items."""
    firsts: dict[int, int] = {}
    stock: dict[int, tuple[int, int]] = {}
    price: dict[int, tuple[Decimal, Decimal]] = {}
    rows = (
        ItemChange.objects.filter(item_id__in=item_ids, source=ChangeSource.ERP)
        # The run compared through an expression, which no index serves: the
        # database then finds these rows by item (a few each) instead of walking
        # every row of the run by its run index for each page (quadratic: 100,000
        # changes took minutes).
        .alias(of_run=F("run_id") + 0)
        .filter(of_run=target_id)
        .order_by("id")
        .values_list("id", "item_id", "old_stock", "new_stock", "old_price", "new_price")
    )
    for pk, item_id, old_s, new_s, old_p, new_p in rows:
        firsts.setdefault(item_id, pk)
        # An update's row that changed a field has both values (catalog.models.ItemChange).
        if new_s is not None and old_s is not None:
            before = stock[item_id][0] if item_id in stock else old_s
            stock[item_id] = (before, new_s)
        if new_p is not None and old_p is not None:
            before_p = price[item_id][0] if item_id in price else old_p
            price[item_id] = (before_p, new_p)
    net = {}
    for item_id, first in firsts.items():
        s = stock.get(item_id)
        p = price.get(item_id)
        # A field the run changed and changed back is not the run's doing.
        net[item_id] = (
            first,
            s if s is not None and s[0] != s[1] else None,
            p if p is not None and p[0] != p[1] else None,
        )
    return net


def _pages(target_id: int) -> Iterator[tuple[int, list[int]]]:
    """(last history id of the page, the ids of the items the page's rows name),
    walking the undone run's history by id (the (run, id) index)."""
    after = 0
    while True:
        rows = list(
            ItemChange.objects.filter(run_id=target_id, source=ChangeSource.ERP, id__gt=after)
            .order_by("id")
            .values_list("id", "item_id")[:PAGE_ROWS]
        )
        if not rows:
            return
        yield after, sorted({item_id for _, item_id in rows})
        after = rows[-1][0]


def _meanwhile_reason(stock: int, price: Decimal, currency: str) -> str:
    return (
        f"Cambió después de la actualización: ahora tiene stock {thousands(stock)} / precio "
        f"{money(price, currency)}; se dejó como está."
    )


def _apply_page(
    run: Run, store: Store, target_id: int, after: int, item_ids: list[int], counts: Counts
) -> None:
    """One page, in one transaction (see the module's docstring)."""
    now = timezone.now()
    writer = CatalogWriter(
        store.pk,
        at=now,
        source=ChangeSource.UNDO,
        actor=_actor(run.requested_by, run.origin),
        user_id=run.requested_by_id,
        run_id=run.pk,
    )
    net = _net_changes(target_id, item_ids)
    # An item whose first row of the run came before this page was done by the page
    # that held that row (it read all of the item's rows then).
    todo = {item_id: n for item_id, n in net.items() if n[0] > after}
    page = Counts(**counts.as_fields())
    updates: list[tuple[int, int, Decimal]] = []
    changes: list[Change] = []
    issues: list[tuple[Any, ...]] = []
    with transaction.atomic():
        writer.lock_store()
        current = {
            pk: (sku, stock, price)
            for pk, sku, stock, price in Item.objects.select_for_update()
            .filter(store=store, pk__in=list(todo))
            .order_by("pk")
            .values_list("pk", "sku", "stock", "wholesale_price")
        }
        for item_id, (_, stock, price) in todo.items():
            if item_id not in current or (stock is None and price is None):
                continue  # deleted since (its history went with it), or nothing net
            sku, now_stock, now_price = current[item_id]
            page.matched += 1
            fields = [(stock, now_stock), (price, now_price)]
            if all(f is None or f[1] == now for f, now in fields):
                new_stock = stock[0] if stock is not None else now_stock
                new_price = price[0] if price is not None else now_price
                updates.append((item_id, new_stock, new_price))
                changes.append(
                    (
                        item_id,
                        now_stock if stock is not None else None,
                        new_stock if stock is not None else None,
                        now_price if price is not None else None,
                        new_price if price is not None else None,
                    )
                )
                page.stock_changed += stock is not None
                page.price_changed += price is not None
            elif all(f is None or f[0] == now for f, now in fields):
                page.unchanged += 1
            else:
                page.changed_meanwhile += 1
                reason = _meanwhile_reason(now_stock, now_price, store.currency)
                issues.append((run.pk, IssueKind.CHANGED_MEANWHILE, "", sku[:100], reason[:300]))
        writer.set_stock_and_price(updates)
        writer.add_history(changes)
        writer.insert(RunIssue, ["run", "kind", "code", "sku", "reason"], issues)
        # Conditional: an undo declared dead meanwhile must not keep writing.
        alive = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            heartbeat_at=now, **page.as_fields()
        )
        if not alive:
            transaction.set_rollback(True)
            raise ErpError(
                ErrorCode.INTERRUPTED,
                "Deshacer quedó sin señales de vida y se dio por interrumpido.",
            )
    # Only once committed: a page rolled back counts nothing.
    for name, value in page.as_fields().items():
        setattr(counts, name, value)


def _perform(run_id: int) -> None:
    run = Run.objects.select_related("store", "requested_by").get(pk=run_id)
    store = run.store
    try:
        asked_by = run.requested_by_id
        if (run.origin == "panel" and asked_by is None) or (
            asked_by is not None
            and not Membership.objects.filter(store=store, user_id=asked_by).exists()
        ):
            raise ErpError(
                ErrorCode.INTERNAL,
                "Quien pidió deshacer la actualización ya no administra esta tienda.",
                permanent=True,
            )
        if run.undoes_id is None:  # the undone run was deleted meanwhile
            raise ErpError(
                ErrorCode.INTERNAL, "La actualización a deshacer ya no existe.", permanent=True
            )
        # Checked when asked, but another undo of the same run may have finished
        # between that check and this one's insert: then there is nothing to do.
        done = successful_undo(Run(pk=run.undoes_id))
        if done is not None:
            raise ErpError(ErrorCode.INTERNAL, f"Ya se deshizo en #{done.pk}.", permanent=True)
        beat = heartbeat(run.pk)  # a page boundary: stops here on SIGTERM, or if declared dead
        counts = Counts()
        for after, item_ids in _pages(run.undoes_id):
            beat()
            _apply_page(run, store, run.undoes_id, after, item_ids, counts)
        beat()
        status = RunStatus.WARNINGS if counts.changed_meanwhile else RunStatus.SUCCEEDED
        Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            status=status, finished_at=timezone.now()
        )
    except ErpError as e:
        logger.warning("undo %s of store %s failed: %s", run.pk, store.slug, e.message)
        _fail(run, e.code, e.message)
    except stopping.StopRequested as e:
        logger.warning("undo %s of store %s stopped by %s", run.pk, store.slug, e)
        _fail(run, ErrorCode.INTERRUPTED, STOPPED.format(signal=e))
    except Exception:
        logger.exception("undo %s of store %s crashed", run.pk, store.slug)
        _fail(run, ErrorCode.INTERNAL, CRASHED)
    except BaseException:
        try:
            _fail(run, ErrorCode.INTERRUPTED, STOPPED.format(signal="de inmediato"))
        except BaseException:
            logger.exception("undo %s: could not record that it was stopped", run.pk)
        raise


def _fail(run: Run, code: str, message: str) -> None:
    running = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING)
    try:
        running.update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error_code=code,
            error_message=message,
        )
    except DatabaseError:
        logger.exception("undo %s: could not record its failure as is", run.pk)
        running.update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error_code=ErrorCode.INTERNAL,
            error_message=CRASHED,
        )
