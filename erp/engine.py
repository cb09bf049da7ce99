"""The ERP-agnostic update engine: runs, and applying ERP items to the catalog.

A run is recorded first (queued, by `request_update`), claimed by a conditional
UPDATE (so a task delivered twice runs once), then fed page by page from the
ERP's `Feed`. Each page is applied in one transaction together with its history
rows, its issues and the run's counters and heartbeat: a worker killed mid-run
leaves whole pages, never half of one. Only a successful run moves the
connection's watermark, in the same transaction that records its outcome.

The rules (issue #3): match ERP code to store SKU by `catalog.models.sku_key`;
ambiguous SKUs are not touched; stock is floored to whole units and negative
becomes 0; discontinued items get stock 0; a price is applied only when it is a
positive number in the store's currency; nothing is created; unchanged items
get no write and no history entry. An item locked against the ERP
(`Item.erp_locked`, issue #11) is left alone and reported as locked; the flag is
read with the page's rows, inside its transaction.
"""

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from catalog.models import ChangeSource, Item, sku_key
from catalog.quantities import to_cents, whole_units
from catalog.templatetags.money import money, thousands
from catalog.writes import CatalogWriter, Change, item_in
from erp import registry, stopping
from erp.errors import ErpError, ErrorCode, printable, storable
from erp.models import (
    ACTIVE_STATUSES,
    STALE_AFTER,
    AuditAction,
    AuditEvent,
    Connection,
    IssueKind,
    Run,
    RunIssue,
    RunStatus,
)
from erp.sources import ErpItem, FeedStats
from stores.models import Membership, Store

logger = logging.getLogger("erp.engine")

# A queued run that no worker has picked up for this long is given up on (queues
# can be long: not tied to STALE_AFTER, which is about a process's signs of life).
QUEUED_STALE_AFTER = timedelta(minutes=30)

# How often a running run's process says it is alive (`beating`), whatever the
# run is doing; STALE_AFTER (45 s) is three missed beats and a margin.
BEAT_EVERY = 10.0  # seconds


class UpdateAlreadyRunning(Exception):
    def __init__(self, run: Run) -> None:
        super().__init__(f"Ya hay una actualización en curso para esta tienda (#{run.pk}).")
        self.run = run


class NotConnected(Exception):
    pass


Progress = Callable[[Run, FeedStats], None]


def expire_stale_runs(store: Store) -> int:
    """Mark runs whose worker died (no heartbeat for a while) as failed.

    Called before starting a run and when showing the history, so a run killed
    with SIGKILL is not left "running" forever and never blocks the next one.
    """
    now = timezone.now()
    stale = Q(status=RunStatus.RUNNING, heartbeat_at__lt=now - STALE_AFTER) | Q(
        status=RunStatus.QUEUED, created_at__lt=now - QUEUED_STALE_AFTER
    )
    return Run.objects.filter(stale, store=store).update(
        status=RunStatus.FAILED,
        finished_at=now,
        error_code=ErrorCode.INTERRUPTED,
        error_message=(
            "La actualización se interrumpió (el proceso que la hacía se detuvo). "
            "No se perdió nada: lo que alcanzó a aplicar quedó registrado y la próxima "
            "actualización retoma desde el último punto seguro."
        ),
    )


DECLARED_DEAD = "La actualización quedó sin señales de vida y se dio por interrumpida."


def heartbeat(run_id: int) -> Callable[[], None]:
    """What a feed calls before each request to its ERP: the run's sign of life.

    Without it only an applied batch would beat, and a live run reading slow pages
    that bring nothing new (a re-read bulk second, pages retried) could be declared
    dead by `expire_stale_runs`. Conditional on the run still running: a run declared dead
    meanwhile learns it here and stops, before asking the ERP for anything else.
    """

    def beat() -> None:
        # Also a page boundary: a run asked to stop stops here, before asking for more.
        stopping.check()
        with stopping.shielded():
            alive = Run.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
                heartbeat_at=timezone.now()
            )
        if not alive:
            raise ErpError(ErrorCode.INTERRUPTED, DECLARED_DEAD)

    return beat


@contextmanager
def beating(run_id: int) -> Iterator[None]:
    """Beat the run's heartbeat every BEAT_EVERY from a thread of its own while
    the run executes, so that a live run is never declared dead however long a
    page request takes (up to the client's deadline, with retries), and a dead
    one is within STALE_AFTER.

    The thread uses its own database connection and closes it. Its beat is
    conditional on the run still running: it never brings back a run declared
    dead (that run learns it at its next page boundary and stops). Not started
    when the run executes inside an outer transaction (a test's): another
    connection could not see the run, and would wait on its row lock forever.
    """
    if transaction.get_connection().in_atomic_block:
        yield
        return
    stop = threading.Event()

    def beat_until_stopped() -> None:
        try:
            while not stop.wait(BEAT_EVERY):
                try:
                    alive = Run.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError:
                    # A busy database (SQLite's write lock held by a big page), or a
                    # dropped connection: the next beat comes soon, and STALE_AFTER
                    # allows for it. This thread serves no requests, so nothing else
                    # would replace a broken connection: close it, the next beat
                    # opens a new one.
                    logger.warning("run %s: could not beat its heartbeat", run_id, exc_info=True)
                    connections[DEFAULT_DB_ALIAS].close_if_unusable_or_obsolete()
                    continue
                if not alive:
                    return
        finally:
            connections.close_all()

    thread = threading.Thread(
        target=beat_until_stopped, name=f"erp-run-{run_id}-heartbeat", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


STOPPED = (
    "La actualización se detuvo porque el proceso que la hacía recibió la orden de "
    "terminar ({signal}). No se perdió nada: lo que alcanzó a aplicar quedó registrado "
    "y la próxima actualización retoma desde el último punto seguro."
)


def active_run(store: Store) -> Run | None:
    return Run.objects.filter(store=store, status__in=ACTIVE_STATUSES).first()


def request_update(
    store: Store,
    *,
    user: Any = None,
    full: bool = False,
    origin: str = "panel",
    enqueue: bool = True,
) -> Run:
    """Record a queued run (and its audit row); enqueue its task once committed.

    Raises UpdateAlreadyRunning when the store has a queued or running run: the
    partial unique constraint decides, so two requests at once start one run.
    """
    try:
        connection = store.erp_connection
    except Connection.DoesNotExist:
        raise NotConnected("Esta tienda no tiene un ERP conectado.") from None
    expire_stale_runs(store)
    actor = _actor(user, origin)
    try:
        with transaction.atomic():
            run = Run.objects.create(
                store=store,
                kind=connection.kind,
                full=full,
                requested_by=user if user is not None and user.is_authenticated else None,
                origin=origin,
            )
            AuditEvent.objects.create(
                store=store,
                user=run.requested_by,
                actor=actor,
                action=AuditAction.UPDATE_REQUESTED,
                detail=f"Actualización {'completa ' if full else ''}#{run.pk}",
            )
            if enqueue:
                from erp.tasks import enqueue_run

                transaction.on_commit(lambda: enqueue_run(run))
    except IntegrityError:
        existing = active_run(store)
        if existing is None:  # it finished in between; let the caller try again
            raise
        raise UpdateAlreadyRunning(existing) from None
    return run


def claim(run_id: int) -> bool:
    """Queued → running, by a conditional UPDATE: exactly one worker wins."""
    now = timezone.now()
    return bool(
        Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=now, heartbeat_at=now
        )
    )


def execute_run(run_id: int, *, progress: Progress | None = None) -> Run:
    """Claim and perform a queued run; return it with its outcome recorded.

    On SIGTERM or SIGINT it stops at a page boundary and records the run as
    interrupted (see erp/stopping.py); `stopping.requested()` then tells the
    caller which signal asked the process to end.
    """
    if not claim(run_id):
        return Run.objects.get(pk=run_id)
    with stopping.stop_on_signals(), beating(run_id):
        return _perform(run_id, progress)


def _perform(run_id: int, progress: Progress | None) -> Run:
    run = Run.objects.select_related("store").get(pk=run_id)
    store = run.store
    stats = FeedStats()
    try:
        # A panel request always has a user; one deleted (SET_NULL) or no longer
        # a member of the store meanwhile does not get to update it.
        asked_by = run.requested_by_id
        if (run.origin == "panel" and asked_by is None) or (
            asked_by is not None
            and not Membership.objects.filter(store=store, user_id=asked_by).exists()
        ):
            raise ErpError(
                ErrorCode.INTERNAL,
                "Quien pidió la actualización ya no administra esta tienda.",
                permanent=True,
            )
        connection = Connection.objects.get(store=store)
        since = None if run.full else connection.watermark
        Run.objects.filter(pk=run.pk).update(
            desde=since, connection_generation=connection.generation
        )
        run.desde = since
        run.connection_generation = connection.generation
        source = registry.source_for(connection)
        try:
            feed = source.feed(
                since,
                # Also for a full run: it starts at the beginning, so a jump moves
                # nothing, but an answer without the time keeps this baseline.
                previous_clock_offset=connection.erp_clock_offset,
                heartbeat=heartbeat(run.pk),
            )
            stats = feed.stats
            applier = Applier(run, store)
            batches = iter(feed.batches)
            while True:
                # Between pages; the wait for the next one may be cut short too.
                with stopping.interruptible():
                    batch = next(batches, None)
                if batch is None:
                    break
                applier.apply(batch, stats)
                if progress is not None:
                    progress(run, stats)
            _finish(
                run,
                stats,
                connection=connection,
                next_watermark=feed.next_watermark,
                clock_offset=feed.clock_offset,
            )
        finally:
            source.close()
    except ErpError as e:
        logger.warning("run %s of store %s failed: %s (%s)", run.pk, store.slug, e.code, e.message)
        _fail(run, stats, e.code, e.message)
    except stopping.StopRequested as e:
        logger.warning("run %s of store %s stopped by %s", run.pk, store.slug, e)
        _fail(run, stats, ErrorCode.INTERRUPTED, STOPPED.format(signal=e))
    except Exception:
        logger.exception("run %s of store %s crashed", run.pk, store.slug)
        _fail(
            run,
            stats,
            ErrorCode.INTERNAL,
            "Falló por un error interno nuestro, no del ERP. Ya quedó registrado; "
            "probá de nuevo en unos minutos y, si se repite, escribinos.",
        )
    except BaseException:
        # Forced out (a second Ctrl-C, db_worker's "terminating current task"):
        # the page being applied was rolled back; say so before the process goes.
        try:
            _fail(run, stats, ErrorCode.INTERRUPTED, STOPPED.format(signal="de inmediato"))
        except BaseException:
            logger.exception("run %s: could not record that it was stopped", run.pk)
        raise
    run.refresh_from_db()
    return run


def _copy_stats(run: Run, stats: FeedStats) -> None:
    run.pages = stats.pages
    run.requests = stats.requests
    run.retries = stats.retries
    run.relogins = stats.relogins
    run.reread = stats.reread


STATS_FIELDS = ["pages", "requests", "retries", "relogins", "reread"]


def _finish(
    run: Run,
    stats: FeedStats,
    *,
    connection: Connection,
    next_watermark: datetime | None,
    clock_offset: float | None,
) -> None:
    _copy_stats(run, stats)
    needs_attention = run.ambiguous or run.invalid or run.price_rejected
    run.status = RunStatus.WARNINGS if needs_attention else RunStatus.SUCCEEDED
    run.finished_at = timezone.now()
    run.next_watermark = next_watermark
    with transaction.atomic():
        updated = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            status=run.status,
            finished_at=run.finished_at,
            next_watermark=next_watermark,
            **{name: getattr(run, name) for name in STATS_FIELDS},
        )
        if not updated:
            # Declared dead (no heartbeat) while it was finishing: the watermark
            # stays, the next run re-reads; nothing is lost.
            return
        # Only the connection this run read, and only if its server did not change
        # meanwhile (`generation`): a watermark is a moment on one instance's clock,
        # and another instance's next run must not start from it.
        Connection.objects.filter(
            pk=connection.pk, store=run.store, generation=connection.generation
        ).update(watermark=next_watermark, erp_clock_offset=clock_offset)


def _fail(run: Run, stats: FeedStats, code: str, message: str) -> None:
    _copy_stats(run, stats)
    outcome = {
        "status": RunStatus.FAILED,
        "finished_at": timezone.now(),
        "error_code": code,
        "error_message": message,
        **{name: getattr(run, name) for name in STATS_FIELDS},
    }
    running = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING)
    try:
        running.update(**outcome)
    except DatabaseError:
        # Whatever in the outcome the database refused, the run must not stay
        # "running" (it would block the store's next update until declared stale).
        logger.exception("run %s: could not record its failure as is", run.pk)
        running.update(
            status=RunStatus.FAILED,
            finished_at=outcome["finished_at"],
            error_code=ErrorCode.INTERNAL,
            error_message="Falló, y el detalle no se pudo guardar. Ya quedó registrado.",
        )


def _actor(user: Any, origin: str) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.email or user.username)
    return {"cli": "Línea de comandos", "schedule": "Programada"}.get(origin, origin)


@dataclass
class StoreRow:
    """The few columns of a store item an update needs (no model instances: cheaper)."""

    id: int
    sku: str
    stock: int
    price: Decimal
    locked: bool = False


@dataclass
class Outcome:
    """What one batch does, before it is written."""

    # By item id: two ERP codes may name the same store item ("ABC" and "abc"), and
    # one UPDATE must not carry the same row twice (PostgreSQL would pick either).
    # The later one wins, as it would across pages; both are in the history.
    updates: dict[int, tuple[int, int, Decimal]] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    issues: list[tuple[str, str, str, str]] = field(default_factory=list)  # kind, code, sku, reason
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Applier:
    """Applies batches of ERP items to one store's catalog, a transaction per batch."""

    def __init__(self, run: Run, store: Store) -> None:
        self.run = run
        self.store = store
        self.erp_name = registry.provider(run.kind).name
        self.actor = f"{self.erp_name} (actualización #{run.pk})"

    def apply(self, batch: list[ErpItem], stats: FeedStats) -> None:
        now = timezone.now()
        run = self.run
        writer = CatalogWriter(
            self.store.pk, at=now, source=ChangeSource.ERP, actor=self.actor, run_id=run.pk
        )
        with transaction.atomic():
            # Read the store's rows inside the transaction that writes them, locked:
            # a manual edit or CSV import committed meanwhile is either seen here
            # (and becomes the history's old value) or waits; it is never reverted.
            writer.lock_store()
            # A code with NUL or a lone surrogate names no store item (SKUs cannot
            # hold them), and the database refuses them even as a query parameter.
            keys = {sku_key(i.code) for i in batch if i.code.strip() and storable(i.code)}
            by_key = self._store_items(keys)
            outcome = Outcome()
            for erp_item in batch:
                self._apply_one(erp_item, by_key, outcome)

            _copy_stats(run, stats)
            for name, value in outcome.counts.items():
                setattr(run, name, getattr(run, name) + value)
            run.heartbeat_at = now
            writer.set_stock_and_price(list(outcome.updates.values()))
            writer.add_history(outcome.changes)
            writer.insert(
                RunIssue,
                ["run", "kind", "code", "sku", "reason"],
                [(run.pk, *issue) for issue in outcome.issues],
            )
            # Conditional: a run declared dead meanwhile must not keep writing.
            alive = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
                heartbeat_at=now, **{name: getattr(run, name) for name in Run.COUNTERS}
            )
            if not alive:
                transaction.set_rollback(True)
                raise ErpError(ErrorCode.INTERRUPTED, DECLARED_DEAD)

    def _store_items(self, keys: Iterable[str]) -> dict[str, list[StoreRow]]:
        by_key: dict[str, list[StoreRow]] = defaultdict(list)
        keys = list(keys)
        for start in range(0, len(keys), 900):
            # order_by(): Item's default ordering would steer SQLite to walk the SKU
            # index of the whole store instead of the (store, sku_key) one.
            rows = (
                Item.objects.select_for_update()
                .filter(item_in("sku_key", keys[start : start + 900]), store=self.store)
                .order_by()
                .values_list("id", "sku", "sku_key", "stock", "wholesale_price", "erp_locked")
            )
            # The lock is read here, with the rows this page locks: an item locked
            # while an update runs is skipped from the next page that reads it on.
            for pk, sku, key, stock, price, locked in rows:
                by_key[key].append(StoreRow(pk, sku, stock, price, locked))
        return by_key

    def _issue(
        self, outcome: Outcome, kind: str, erp_item: ErpItem, reason: str, sku: str = ""
    ) -> None:
        outcome.counts[kind] += 1
        outcome.issues.append((kind, _code(erp_item), sku[:100], printable(reason)[:300]))

    def _locked_reason(self, erp_item: ErpItem) -> str:
        """Says that the item was left alone and what the ERP would have set, so the
        admin can decide whether to unlock it."""
        sent = []
        stock = stock_from_erp(erp_item)
        if stock is not None:
            sent.append(f"stock {thousands(stock)}")
        price, _ = price_from_erp(erp_item, self.store.currency, self.erp_name)
        if price is not None:
            sent.append(f"precio {money(price, self.store.currency)}")
        said = f" {self.erp_name} mandó {' y '.join(sent)}." if sent else ""
        return (
            f"Bloqueado en la tienda: se dejaron su stock y su precio.{said} "
            "Desbloquealo y hacé una actualización completa para traer lo de "
            f"{self.erp_name}."
        )

    def _apply_one(
        self, erp_item: ErpItem, by_key: dict[str, list[StoreRow]], outcome: Outcome
    ) -> None:
        outcome.counts["received"] += 1
        if not erp_item.code.strip():
            self._issue(outcome, IssueKind.INVALID, erp_item, "El ítem no tiene código.")
            return
        new_stock = stock_from_erp(erp_item)
        if new_stock is None:
            self._issue(
                outcome,
                IssueKind.INVALID,
                erp_item,
                f"Stock ilegible: {_shown(erp_item.stock_raw)}. No se aplicó nada de este ítem.",
            )
            return
        matches = by_key.get(sku_key(erp_item.code), [])
        if not matches:
            self._issue(
                outcome,
                IssueKind.UNMATCHED,
                erp_item,
                "Ningún producto de la tienda tiene este SKU.",
            )
            return
        if len(matches) > 1:
            skus = ", ".join(sorted(row.sku for row in matches))
            outcome.counts[IssueKind.AMBIGUOUS] += 1
            reason = (
                f"Varios SKU de la tienda son el mismo código al ignorar mayúsculas y "
                f"espacios ({skus}); no se actualizó ninguno."
            )
            for row in matches:
                outcome.issues.append(
                    (IssueKind.AMBIGUOUS, _code(erp_item), row.sku[:100], reason[:300])
                )
            return
        row = matches[0]
        outcome.counts["matched"] += 1
        if row.locked:
            self._issue(
                outcome,
                IssueKind.LOCKED,
                erp_item,
                self._locked_reason(erp_item),
                sku=row.sku,
            )
            return
        if not erp_item.active:
            self._issue(
                outcome,
                IssueKind.DISCONTINUED,
                erp_item,
                f"Discontinuado en {self.erp_name}: su stock quedó en 0.",
                sku=row.sku,
            )
        new_price, price_problem = price_from_erp(erp_item, self.store.currency, self.erp_name)
        if price_problem:
            self._issue(outcome, IssueKind.PRICE_REJECTED, erp_item, price_problem, sku=row.sku)
        stock_changes = new_stock != row.stock
        price_changes = new_price is not None and new_price != row.price
        if not (stock_changes or price_changes):
            outcome.counts["unchanged"] += 1
            return
        outcome.changes.append(
            (
                row.id,
                row.stock if stock_changes else None,
                new_stock if stock_changes else None,
                row.price if price_changes else None,
                new_price if price_changes else None,
            )
        )
        if stock_changes:
            outcome.counts["stock_changed"] += 1
            row.stock = new_stock
        if price_changes:
            assert new_price is not None
            outcome.counts["price_changed"] += 1
            row.price = new_price
        outcome.updates[row.id] = (row.id, row.stock, row.price)


def stock_from_erp(erp_item: ErpItem) -> int | None:
    """Whole units, floored; negative is 0; discontinued is 0; None if unreadable."""
    if not erp_item.active:
        return 0  # whatever its stock says, even unreadable
    if erp_item.stock is None:
        return None
    units = whole_units(erp_item.stock)  # None when not finite or out of range
    return None if units is None else max(0, units)


def price_from_erp(
    erp_item: ErpItem, currency: str, erp_name: str = "El ERP"
) -> tuple[Decimal | None, str]:
    """(price to apply, or None with the reason it is not applied)."""
    price = erp_item.price
    if price is None:
        if erp_item.price_raw is None:
            return None, f"{erp_name} no tiene precio mayorista para este ítem."
        return None, f"El precio mayorista no es un número: {_shown(erp_item.price_raw)}."
    if not price.is_finite():
        return None, f"El precio mayorista no es un número: {_shown(erp_item.price_raw)}."
    if erp_item.currency != currency:
        return None, (
            f"El precio está en {erp_item.currency} y la tienda vende en {currency}; "
            "no se convierte."
        )
    cents = to_cents(price)  # half-up; None when out of range
    if cents is None:
        return None, f"El precio mayorista está fuera de rango: {_shown(erp_item.price_raw)}."
    if cents <= 0:
        return None, f"El precio mayorista es {cents}: tiene que ser mayor que 0."
    return cents, ""


def _shown(raw: object) -> str:
    text = repr(raw) if not isinstance(raw, str) else f"«{printable(raw)}»"
    return text[:60]


def _code(erp_item: ErpItem) -> str:
    return printable(erp_item.code)[:200]
