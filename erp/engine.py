"""The ERP-agnostic update engine: runs, and applying ERP items to the catalog.

A run is recorded first (queued, by `request_update`), claimed by a conditional
UPDATE (so a task delivered twice runs once), then performed in two phases
(issue #11). Plan: the ERP's `Feed` is read page by page and each page's outcome
is computed and stored (a `PlannedPage` row, its issues, the run's counters and
heartbeat, in one transaction) without writing to the catalog. Decide: a preview
ends there; an update that trips a guard rail (`GuardRails`) is held for a
person to apply (`apply_held`) or discard (`discard_held`). Apply: the plan is
written in whole pages, several per transaction, each with its history rows,
issues and counters: a worker killed mid-run leaves whole pages, never half of
one. Only a successful update moves the connection's watermark, in the same
transaction that records its outcome. At every page boundary a run someone asked
to cancel (`request_cancel`) stops and ends cancelled.

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
    GuardRails,
    IssueKind,
    PlannedPage,
    Run,
    RunIssue,
    RunMode,
    RunPhase,
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
    # A held run applied later waits in the queue from when it was applied.
    stale = (
        Q(status=RunStatus.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
        | Q(
            status=RunStatus.QUEUED,
            decided_at__isnull=True,
            created_at__lt=now - QUEUED_STALE_AFTER,
        )
        | Q(status=RunStatus.QUEUED, decided_at__lt=now - QUEUED_STALE_AFTER)
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
    mode: str = RunMode.UPDATE,
) -> Run:
    """Record a queued run (and its audit row); enqueue its task once committed.

    `mode=RunMode.PREVIEW` records a preview: it reads the ERP and writes nothing
    to the catalog. Raises UpdateAlreadyRunning when the store has a queued or
    running run: the partial unique constraint decides, so two requests at once
    start one run.
    """
    try:
        connection = store.erp_connection
    except Connection.DoesNotExist:
        raise NotConnected("Esta tienda no tiene un ERP conectado.") from None
    expire_stale_runs(store)
    actor = _actor(user, origin)
    preview = mode == RunMode.PREVIEW
    try:
        with transaction.atomic():
            run = Run.objects.create(
                store=store,
                kind=connection.kind,
                full=full,
                mode=mode,
                requested_by=user if user is not None and user.is_authenticated else None,
                origin=origin,
            )
            AuditEvent.objects.create(
                store=store,
                user=run.requested_by,
                actor=actor,
                action=AuditAction.PREVIEW_REQUESTED if preview else AuditAction.UPDATE_REQUESTED,
                detail=(
                    f"{'Vista previa' if preview else 'Actualización'} "
                    f"{'completa ' if full else ''}#{run.pk}"
                ),
            )
            if enqueue:
                _enqueue_on_commit(run.pk)
    except IntegrityError:
        existing = active_run(store)
        if existing is None:  # it finished in between; let the caller try again
            raise
        raise UpdateAlreadyRunning(existing) from None
    return run


def _enqueue_on_commit(run_id: int) -> None:
    """Enqueue the run's task on its queue (erp/tasks.py) once the transaction commits."""
    from erp.tasks import enqueue_run

    transaction.on_commit(lambda: enqueue_run(Run.objects.get(pk=run_id)))


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


# ---- Held runs and cancelling: what a person decides --------------------------------


class NotHeld(Exception):
    """The run is no longer held (someone applied or discarded it meanwhile)."""

    def __init__(self, run: Run) -> None:
        super().__init__(
            f"La actualización #{run.pk} ya no está retenida: alguien la aplicó o la "
            "descartó. Recargá la página para ver cómo quedó."
        )
        self.run = run


def apply_held(run: Run, *, user: Any = None, origin: str = "panel", enqueue: bool = True) -> Run:
    """A held run is applied after all: held → queued, its task enqueued on commit.

    Raises UpdateAlreadyRunning when another run of the store is queued or
    running (the same constraint that keeps two runs apart), NotHeld when it is
    no longer held. Recorded with who decided, in one transaction with its
    audit row. The worker then applies the plan the run stored, leaving alone
    what the store changed meanwhile (`_apply_plan`, held=True).
    """
    user_row = user if user is not None and getattr(user, "is_authenticated", False) else None
    now = timezone.now()
    try:
        with transaction.atomic():
            moved = Run.objects.filter(pk=run.pk, store=run.store, status=RunStatus.HELD).update(
                status=RunStatus.QUEUED,
                decided_by=user_row,
                decided_at=now,
                finished_at=None,
            )
            if not moved:
                raise NotHeld(run)
            AuditEvent.objects.create(
                store=run.store,
                user=user_row,
                actor=_actor(user, origin),
                action=AuditAction.RUN_APPLIED,
                detail=f"Actualización retenida #{run.pk}",
            )
            if enqueue:
                _enqueue_on_commit(run.pk)
    except IntegrityError:
        existing = active_run(run.store)
        if existing is None:  # it finished in between; let the caller try again
            raise
        raise UpdateAlreadyRunning(existing) from None
    run.refresh_from_db()
    return run


def discard_held(run: Run, *, user: Any = None, origin: str = "panel") -> Run:
    """A held run is discarded: nothing is written and the watermark stays, so
    the next update reads those changes from the ERP again. Raises NotHeld."""
    user_row = user if user is not None and getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        moved = Run.objects.filter(pk=run.pk, store=run.store, status=RunStatus.HELD).update(
            status=RunStatus.DISCARDED, decided_by=user_row, decided_at=timezone.now()
        )
        if not moved:
            raise NotHeld(run)
        AuditEvent.objects.create(
            store=run.store,
            user=user_row,
            actor=_actor(user, origin),
            action=AuditAction.RUN_DISCARDED,
            detail=f"Actualización retenida #{run.pk}",
        )
    run.refresh_from_db()
    return run


def request_cancel(run: Run, *, user: Any = None, origin: str = "panel") -> bool:
    """Ask a queued or running run to stop; False if it was not active (or already
    asked). A queued run is cancelled at once; a running one stops at its next page
    boundary (`_check_cancel`) and ends `cancelled`, keeping the whole pages it
    applied and leaving the watermark where it was. The one implementation, with
    its audit row and who asked, is `erp.cancel.request_cancel`.
    """
    from erp.cancel import request_cancel as ask

    return ask(run.store, run, user, origin=origin).changed


class CancelRequested(Exception):
    """Raised at a page boundary of a run someone asked to cancel."""


def _check_cancel(run_id: int) -> None:
    if Run.objects.filter(pk=run_id, cancel_requested_at__isnull=False).exists():
        raise CancelRequested


# ---- Performing a run: plan, decide, apply ---------------------------------------------


def _perform(run_id: int, progress: Progress | None) -> Run:
    run = Run.objects.select_related("store").get(pk=run_id)
    store = run.store
    # A held run being applied already read the ERP: its transport figures stay.
    # The feed replaces `current.stats` with its own, live, once it is opened.
    current = _Current(_stats_of(run) if run.decided_at is not None else FeedStats())
    try:
        _check_requester(run)
        connection = Connection.objects.get(store=store)
        if run.decided_at is not None:
            _apply_plan(run, current.stats, held=True)
            _finish_held(run, current.stats)
        else:
            _plan_decide_apply(run, connection, current, progress)
    except CancelRequested:
        logger.info("run %s of store %s cancelled", run.pk, store.slug)
        _end_cancelled(run, current.stats)
    except ErpError as e:
        logger.warning("run %s of store %s failed: %s (%s)", run.pk, store.slug, e.code, e.message)
        _fail(run, current.stats, e.code, e.message)
    except stopping.StopRequested as e:
        logger.warning("run %s of store %s stopped by %s", run.pk, store.slug, e)
        _fail(run, current.stats, ErrorCode.INTERRUPTED, STOPPED.format(signal=e))
    except Exception:
        logger.exception("run %s of store %s crashed", run.pk, store.slug)
        _fail(
            run,
            current.stats,
            ErrorCode.INTERNAL,
            "Falló por un error interno nuestro, no del ERP. Ya quedó registrado; "
            "probá de nuevo en unos minutos y, si se repite, escribinos.",
        )
    except BaseException:
        # Forced out (a second Ctrl-C, db_worker's "terminating current task"):
        # the page being applied was rolled back; say so before the process goes.
        try:
            _fail(run, current.stats, ErrorCode.INTERRUPTED, STOPPED.format(signal="de inmediato"))
        except BaseException:
            logger.exception("run %s: could not record that it was stopped", run.pk)
        raise
    run.refresh_from_db()
    return run


@dataclass
class _Current:
    stats: FeedStats


def _check_requester(run: Run) -> None:
    # A panel request always has a user; one deleted (SET_NULL) or no longer
    # a member of the store meanwhile does not get to update it. A held run
    # being applied answers to whoever applied it.
    if run.decided_at is not None:
        asked_by = run.decided_by_id
    else:
        asked_by = run.requested_by_id
        if run.origin == "panel" and asked_by is None:
            asked_by = -1  # nobody: no membership matches
    if (
        asked_by is not None
        and not Membership.objects.filter(store=run.store, user_id=asked_by).exists()
    ):
        raise ErpError(
            ErrorCode.INTERNAL,
            "Quien pidió la actualización ya no administra esta tienda.",
            permanent=True,
        )


def _plan_decide_apply(
    run: Run, connection: Connection, current: _Current, progress: Progress | None
) -> None:
    store = run.store
    since = None if run.full else connection.watermark
    Run.objects.filter(pk=run.pk).update(
        desde=since, connection_generation=connection.generation, phase=RunPhase.PLANNING
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
        stats = current.stats = feed.stats
        planner = Planner(run, store)
        batches = iter(feed.batches)
        while True:
            # Between pages; the wait for the next one may be cut short too.
            with stopping.interruptible():
                batch = next(batches, None)
            if batch is None:
                break
            _check_cancel(run.pk)
            planner.plan(batch, stats)
            if progress is not None:
                progress(run, stats)
    finally:
        source.close()
    _check_cancel(run.pk)
    findings = guard_findings(run, planner.watch, GuardRails.for_store(store))
    if run.mode == RunMode.PREVIEW:
        _end_planned(run, stats, RunStatus.SUCCEEDED, feed.next_watermark, findings)
    elif findings:
        _end_planned(run, stats, RunStatus.HELD, feed.next_watermark, findings)
    else:
        _apply_plan(run, stats, held=False)
        _finish(
            run,
            stats,
            connection=connection,
            next_watermark=feed.next_watermark,
            clock_offset=feed.clock_offset,
        )


def _stats_of(run: Run) -> FeedStats:
    return FeedStats(**{name: getattr(run, name) for name in STATS_FIELDS})


def _copy_stats(run: Run, stats: FeedStats) -> None:
    run.pages = stats.pages
    run.requests = stats.requests
    run.retries = stats.retries
    run.relogins = stats.relogins
    run.reread = stats.reread


STATS_FIELDS = ["pages", "requests", "retries", "relogins", "reread"]


def _needs_attention(run: Run) -> bool:
    return bool(run.ambiguous or run.invalid or run.price_rejected or run.changed_meanwhile)


def _finish(
    run: Run,
    stats: FeedStats,
    *,
    connection: Connection,
    next_watermark: datetime | None,
    clock_offset: float | None,
) -> None:
    _copy_stats(run, stats)
    run.status = RunStatus.WARNINGS if _needs_attention(run) else RunStatus.SUCCEEDED
    run.finished_at = timezone.now()
    run.next_watermark = next_watermark
    with transaction.atomic():
        # Conditional: a run declared dead (no heartbeat) while it was finishing,
        # or one asked to cancel, keeps the watermark; the next run re-reads.
        updated = Run.objects.filter(
            pk=run.pk, status=RunStatus.RUNNING, cancel_requested_at__isnull=True
        ).update(
            status=run.status,
            finished_at=run.finished_at,
            next_watermark=next_watermark,
            phase=RunPhase.NONE,
            **{name: getattr(run, name) for name in STATS_FIELDS},
        )
        if not updated:
            _check_cancel(run.pk)
            return
        # Only the connection this run read, and only if its server did not change
        # meanwhile (`generation`): a watermark is a moment on one instance's clock,
        # and another instance's next run must not start from it.
        Connection.objects.filter(
            pk=connection.pk, store=run.store, generation=connection.generation
        ).update(watermark=next_watermark, erp_clock_offset=clock_offset)
        # Applied: its history holds what the plan said.
        PlannedPage.objects.filter(run=run).delete()


def _finish_held(run: Run, stats: FeedStats) -> None:
    """A held run applied later ends; the watermark moves only if nothing moved it
    since the run read the ERP (never backwards: a later update that moved it
    already re-read these changes), and only on the server it read (`generation`)."""
    _copy_stats(run, stats)
    run.status = RunStatus.WARNINGS if _needs_attention(run) else RunStatus.SUCCEEDED
    run.finished_at = timezone.now()
    with transaction.atomic():
        updated = Run.objects.filter(
            pk=run.pk, status=RunStatus.RUNNING, cancel_requested_at__isnull=True
        ).update(status=run.status, finished_at=run.finished_at, phase=RunPhase.NONE)
        if not updated:
            _check_cancel(run.pk)
            return
        # Applied: its history and its changed-meanwhile issues say what it did.
        PlannedPage.objects.filter(run=run).delete()
        if run.next_watermark is None or run.connection_generation is None:
            return
        unmoved = Connection.objects.filter(store=run.store, generation=run.connection_generation)
        if run.full:
            # A full run did not record the watermark it found; any watermark
            # before its own is older than its read (one run at a time).
            unmoved = unmoved.filter(
                Q(watermark__isnull=True) | Q(watermark__lt=run.next_watermark)
            )
        elif run.desde is None:
            unmoved = unmoved.filter(watermark__isnull=True)
        else:
            unmoved = unmoved.filter(watermark=run.desde)
        # The clock offset is left as it was: the last baseline stays a baseline.
        unmoved.update(watermark=run.next_watermark)


def _end_planned(
    run: Run,
    stats: FeedStats,
    status: str,
    next_watermark: datetime | None,
    findings: list[dict[str, Any]],
) -> None:
    """A preview or a held run: its plan is kept, nothing was written to the
    catalog, and the watermark stays (recorded on the run for information)."""
    _copy_stats(run, stats)
    if status == RunStatus.SUCCEEDED and _needs_attention(run):
        status = RunStatus.WARNINGS
    updated = Run.objects.filter(
        pk=run.pk, status=RunStatus.RUNNING, cancel_requested_at__isnull=True
    ).update(
        status=status,
        finished_at=timezone.now(),
        next_watermark=next_watermark,
        guard_findings=findings,
        phase=RunPhase.NONE,
        **{name: getattr(run, name) for name in STATS_FIELDS},
    )
    if not updated:
        _check_cancel(run.pk)


def _end_cancelled(run: Run, stats: FeedStats) -> None:
    _copy_stats(run, stats)
    Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.CANCELLED,
        finished_at=timezone.now(),
        phase=RunPhase.NONE,
        **{name: getattr(run, name) for name in STATS_FIELDS},
    )


def _fail(run: Run, stats: FeedStats, code: str, message: str) -> None:
    _copy_stats(run, stats)
    outcome = {
        "status": RunStatus.FAILED,
        "finished_at": timezone.now(),
        "error_code": code,
        "error_message": message,
        "phase": RunPhase.NONE,
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


# A planned change, as PlannedPage.changes holds it:
# [item_id, sku, old_stock, new_stock|None, old_price, new_price|None, ERP code].
PlannedChange = list[Any]


@dataclass
class Outcome:
    """What one page does, before it is written."""

    changes: list[PlannedChange] = field(default_factory=list)
    issues: list[tuple[str, str, str, str]] = field(default_factory=list)  # kind, code, sku, reason
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


EXAMPLES = 5


@dataclass
class Watch:
    """What the guard rails weigh, gathered while planning: counts and a few examples."""

    to_zero: int = 0
    to_zero_examples: list[str] = field(default_factory=list)
    price_down: int = 0
    price_up: int = 0
    price_examples: list[str] = field(default_factory=list)


class Planner:
    """Plans pages of ERP items against one store's catalog: today's rules, no
    catalog write. Each page's plan row, issues and the run's counters and
    heartbeat are stored in one transaction."""

    def __init__(self, run: Run, store: Store) -> None:
        self.run = run
        self.store = store
        self.erp_name = registry.provider(run.kind).name
        self.watch = Watch()
        self.seq = PlannedPage.objects.filter(run=run).count()
        # The value each item will have once the pages planned so far are applied:
        # a later page naming it again (the feed's overlap, a re-read second, two
        # codes for one item) is planned against it, as it would have been read
        # had the earlier page been written. One entry per changed item.
        self.planned: dict[int, tuple[int, Decimal]] = {}

    def plan(self, batch: list[ErpItem], stats: FeedStats) -> list[PlannedChange]:
        run = self.run
        now = timezone.now()
        # A code with NUL or a lone surrogate names no store item (SKUs cannot
        # hold them), and the database refuses them even as a query parameter.
        keys = {sku_key(i.code) for i in batch if i.code.strip() and storable(i.code)}
        by_key = store_items(self.store, keys, for_update=False)
        for rows in by_key.values():
            for row in rows:
                if row.id in self.planned:
                    row.stock, row.price = self.planned[row.id]
        outcome = Outcome()
        for erp_item in batch:
            self._plan_one(erp_item, by_key, outcome)
        for change in outcome.changes:
            item_id, new_stock, new_price = change[0], change[3], change[5]
            old_stock, old_price = self.planned.get(item_id, (change[2], Decimal(change[4])))
            self.planned[item_id] = (
                old_stock if new_stock is None else new_stock,
                old_price if new_price is None else Decimal(new_price),
            )

        _copy_stats(run, stats)
        for name, value in outcome.counts.items():
            setattr(run, name, getattr(run, name) + value)
        if stats.expected is not None:
            run.total_items = stats.expected
        writer = CatalogWriter(self.store.pk, at=now, source=ChangeSource.ERP, actor="")
        with transaction.atomic():
            PlannedPage.objects.create(run=run, seq=self.seq, changes=outcome.changes)
            writer.insert(
                RunIssue,
                ["run", "kind", "code", "sku", "reason"],
                [(run.pk, *issue) for issue in outcome.issues],
            )
            # Conditional: a run declared dead meanwhile must not keep writing.
            alive = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
                heartbeat_at=now,
                total_items=run.total_items,
                **{name: getattr(run, name) for name in Run.COUNTERS},
            )
            if not alive:
                transaction.set_rollback(True)
                raise ErpError(ErrorCode.INTERRUPTED, DECLARED_DEAD)
        self.seq += 1
        return outcome.changes

    def _issue(
        self, outcome: Outcome, kind: str, erp_item: ErpItem, reason: str, sku: str = ""
    ) -> None:
        outcome.counts[kind] += 1
        outcome.issues.append((kind, _code(erp_item), sku[:100], printable(reason)[:300]))

    def _plan_one(
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
            new_price, _ = price_from_erp(erp_item, self.store.currency, self.erp_name)
            self._issue(
                outcome,
                IssueKind.LOCKED,
                erp_item,
                locked_reason(self.erp_name, new_stock, new_price, self.store.currency),
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
            [
                row.id,
                row.sku,
                row.stock,
                new_stock if stock_changes else None,
                str(row.price),
                str(new_price) if price_changes else None,
                _code(erp_item),
            ]
        )
        watch = self.watch
        if stock_changes:
            outcome.counts["stock_changed"] += 1
            if row.stock > 0 and new_stock == 0:
                watch.to_zero += 1
                if len(watch.to_zero_examples) < EXAMPLES:
                    watch.to_zero_examples.append(f"{row.sku}: stock {thousands(row.stock)} → 0")
            row.stock = new_stock
        if price_changes:
            assert new_price is not None
            outcome.counts["price_changed"] += 1
            down = row.price > 0 and new_price * 2 < row.price
            up = row.price > 0 and new_price > row.price * 10
            if down or up:
                if down:
                    watch.price_down += 1
                else:
                    watch.price_up += 1
                if len(watch.price_examples) < EXAMPLES:
                    currency = self.store.currency
                    watch.price_examples.append(
                        f"{row.sku}: {money(row.price, currency)} → {money(new_price, currency)}"
                    )
            row.price = new_price


def store_items(
    store: Store, keys: Iterable[str], *, for_update: bool
) -> dict[str, list[StoreRow]]:
    """The store's rows for these SKU keys (locked when `for_update`)."""
    by_key: dict[str, list[StoreRow]] = defaultdict(list)
    keys = list(keys)
    for start in range(0, len(keys), 900):
        items = Item.objects.select_for_update() if for_update else Item.objects.all()
        # order_by(): Item's default ordering would steer SQLite to walk the SKU
        # index of the whole store instead of the (store, sku_key) one.
        rows = (
            items.filter(item_in("sku_key", keys[start : start + 900]), store=store)
            .order_by()
            .values_list("id", "sku", "sku_key", "stock", "wholesale_price", "erp_locked")
        )
        for pk, sku, key, stock, price, locked in rows:
            by_key[key].append(StoreRow(pk, sku, stock, price, locked))
    return by_key


def locked_reason(erp_name: str, stock: int | None, price: Decimal | None, currency: str) -> str:
    """Says that the item was left alone and what the ERP would have set, so the
    admin can decide whether to unlock it."""
    sent = []
    if stock is not None:
        sent.append(f"stock {thousands(stock)}")
    if price is not None:
        sent.append(f"precio {money(price, currency)}")
    said = f" {erp_name} mandó {' y '.join(sent)}." if sent else ""
    return (
        f"Bloqueado en la tienda: se dejaron su stock y su precio.{said} "
        "Desbloquealo y hacé una actualización completa para traer lo de "
        f"{erp_name}."
    )


def guard_findings(run: Run, watch: Watch, rails: GuardRails) -> list[dict[str, Any]]:
    """The guard rails this run trips, as plain Spanish messages with examples
    (stored on the run: `Run.guard_findings`). Empty: it looks like a normal update."""
    findings: list[dict[str, Any]] = []
    # Of the store's items, not of those the run received: an incremental update
    # receives only what changed, and most of a quiet day's changes may be sales.
    matched = max(run.matched, Item.objects.filter(store=run.store).count())
    if (
        rails.zero_stock_on
        and watch.to_zero >= rails.zero_stock_min
        and watch.to_zero * 100 > rails.zero_stock_percent * matched
    ):
        findings.append(
            {
                "rule": "zero_stock",
                "message": (
                    f"{thousands(watch.to_zero)} de {thousands(matched)} ítems quedarían "
                    "con stock 0."
                ),
                "examples": watch.to_zero_examples,
            }
        )
    jumps = watch.price_down + watch.price_up
    if (
        rails.price_on
        and jumps >= rails.price_min
        and jumps * 100 > rails.price_percent * run.price_changed
    ):
        parts = []
        if watch.price_down:
            parts.append(f"{thousands(watch.price_down)} bajarían más de la mitad")
        if watch.price_up:
            parts.append(f"{thousands(watch.price_up)} subirían más de diez veces")
        findings.append(
            {
                "rule": "price",
                "message": (
                    f"De {thousands(run.price_changed)} precios que cambian, {' y '.join(parts)}."
                ),
                "examples": watch.price_examples,
            }
        )
    if rails.full_drop_on and run.full:
        last_full = (
            Run.objects.filter(
                store=run.store,
                full=True,
                mode=RunMode.UPDATE,
                status__in=[RunStatus.SUCCEEDED, RunStatus.WARNINGS],
                received__gt=0,
            )
            .exclude(pk=run.pk)
            .order_by("-finished_at", "-pk")
            .first()
        )
        if (
            last_full is not None
            and run.received * 100 < rails.full_drop_percent * last_full.received
        ):
            less = 100 - run.received * 100 // last_full.received
            findings.append(
                {
                    "rule": "full_drop",
                    "message": (
                        f"El ERP mandó {less} % menos ítems que en la última actualización "
                        f"completa ({thousands(run.received)} contra "
                        f"{thousands(last_full.received)}, #{last_full.pk})."
                    ),
                    "examples": [],
                }
            )
    return findings


# Planned changes written per transaction when applying: whole pages only (R5),
# several of them together (fewer commits; see docs/benchmarks.md).
APPLY_ROWS = 5000


def _apply_plan(run: Run, stats: FeedStats, *, held: bool) -> None:
    """Apply the run's stored plan, whole pages per transaction, in order.

    `held`: the run was held and is applied later; an item the store changed
    since the plan was made (a manual edit, a CSV import, another update) is left
    alone and listed as changed meanwhile. Otherwise (right after planning) the
    ERP is authoritative, as it always was: the history's old value is the one
    found now, so a manual edit made in between is visible there, never silently
    reverted.
    """
    # From here the change counters count what is written (the plan's figures
    # are in its rows): a run stopped halfway says how far it got.
    run.phase, run.stock_changed, run.price_changed = RunPhase.APPLYING, 0, 0
    Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        phase=run.phase, stock_changed=0, price_changed=0
    )
    writer = PlanWriter(run, held=held)
    page_ids = list(
        PlannedPage.objects.filter(run=run).order_by("seq").values_list("pk", flat=True)
    )
    group: list[PlannedChange] = []
    for start in range(0, len(page_ids), 50):
        pages = PlannedPage.objects.filter(pk__in=page_ids[start : start + 50]).order_by("seq")
        for changes in pages.values_list("changes", flat=True):
            group.extend(changes)
            if len(group) >= APPLY_ROWS:
                writer.write(group, stats)
                group = []
    if group:
        writer.write(group, stats)


class PlanWriter:
    """Writes planned changes to the catalog, a transaction per call."""

    def __init__(self, run: Run, *, held: bool) -> None:
        self.run = run
        self.store = run.store
        self.held = held
        self.erp_name = registry.provider(run.kind).name
        self.actor = f"{self.erp_name} (actualización #{run.pk})"

    def write(self, changes: list[PlannedChange], stats: FeedStats) -> None:
        run = self.run
        # A page boundary: a process asked to end, or a person asking to cancel,
        # stops here; what was written stays whole.
        stopping.check()
        _check_cancel(run.pk)
        now = timezone.now()
        writer = CatalogWriter(
            self.store.pk, at=now, source=ChangeSource.ERP, actor=self.actor, run_id=run.pk
        )
        currency = self.store.currency
        counts: dict[str, int] = defaultdict(int)
        with transaction.atomic():
            # Read the rows inside the transaction that writes them, locked: a
            # manual edit or CSV import committed meanwhile is either seen here
            # (and becomes the history's old value) or waits; it is never reverted.
            writer.lock_store()
            current = self._current({change[0] for change in changes})
            updates: dict[int, tuple[int, int, Decimal]] = {}
            history: list[Change] = []
            issues: list[tuple[int, str, str, str, str]] = []
            for item_id, sku, old_stock, new_stock, old_price_s, new_price_s, code in changes:
                old_price = Decimal(old_price_s)
                new_price = None if new_price_s is None else Decimal(new_price_s)
                row = current.get(item_id)
                if row is None:
                    # Deleted from the store after the plan was made.
                    counts["matched"] -= 1
                    counts[IssueKind.UNMATCHED] += 1
                    issues.append(
                        (
                            run.pk,
                            IssueKind.UNMATCHED,
                            code,
                            sku[:100],
                            "Se borró de la tienda mientras tanto; no se aplicó.",
                        )
                    )
                    continue
                stock, price, locked = row
                if locked:
                    # Locked after the plan was made: left alone, as a lock says.
                    counts[IssueKind.LOCKED] += 1
                    reason = locked_reason(self.erp_name, new_stock, new_price, currency)
                    issues.append(
                        (run.pk, IssueKind.LOCKED, code, sku[:100], printable(reason)[:300])
                    )
                    continue
                if self.held and (stock, price) != (old_stock, old_price):
                    counts[IssueKind.CHANGED_MEANWHILE] += 1
                    reason = changed_meanwhile_reason(
                        self.erp_name, stock, price, new_stock, new_price, currency
                    )
                    issues.append(
                        (run.pk, IssueKind.CHANGED_MEANWHILE, code, sku[:100], reason[:300])
                    )
                    continue
                stock_changes = new_stock is not None and new_stock != stock
                price_changes = new_price is not None and new_price != price
                counts["stock_changed"] += stock_changes
                counts["price_changed"] += price_changes
                if not (stock_changes or price_changes):
                    # Already what the ERP says (the store got there meanwhile).
                    counts["unchanged"] += 1
                    continue
                history.append(
                    (
                        item_id,
                        stock if stock_changes else None,
                        new_stock if stock_changes else None,
                        price if price_changes else None,
                        new_price if price_changes else None,
                    )
                )
                assert new_stock is not None or not stock_changes
                stock = new_stock if stock_changes and new_stock is not None else stock
                price = new_price if price_changes and new_price is not None else price
                current[item_id] = (stock, price, False)
                # By item id: one UPDATE must not carry the same row twice
                # (PostgreSQL would pick either); the later change wins.
                updates[item_id] = (item_id, stock, price)
            for name, value in counts.items():
                setattr(run, name, getattr(run, name) + value)
            _copy_stats(run, stats)
            writer.set_stock_and_price(list(updates.values()))
            writer.add_history(history)
            writer.insert(RunIssue, ["run", "kind", "code", "sku", "reason"], issues)
            # Conditional: a run declared dead meanwhile must not keep writing.
            alive = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
                heartbeat_at=now, **{name: getattr(run, name) for name in Run.COUNTERS}
            )
            if not alive:
                transaction.set_rollback(True)
                raise ErpError(ErrorCode.INTERRUPTED, DECLARED_DEAD)

    def _current(self, ids: set[int]) -> dict[int, tuple[int, Decimal, bool]]:
        """The items' stock, price and lock now, each row locked (FOR UPDATE)."""
        found: dict[int, tuple[int, Decimal, bool]] = {}
        id_list = sorted(ids)
        for start in range(0, len(id_list), 900):
            rows = (
                Item.objects.select_for_update()
                .filter(pk__in=id_list[start : start + 900], store=self.store)
                .order_by()
                .values_list("id", "stock", "wholesale_price", "erp_locked")
            )
            for pk, stock, price, locked in rows:
                found[pk] = (stock, price, locked)
        return found


def changed_meanwhile_reason(
    erp_name: str,
    stock: int,
    price: Decimal,
    new_stock: int | None,
    new_price: Decimal | None,
    currency: str,
) -> str:
    would = []
    if new_stock is not None:
        would.append(f"stock {thousands(new_stock)}")
    if new_price is not None:
        would.append(f"precio {money(new_price, currency)}")
    return printable(
        "Cambió en la tienda después de leer el ERP y se dejó como está: ahora tiene "
        f"stock {thousands(stock)} y precio {money(price, currency)}; {erp_name} "
        f"habría puesto {' y '.join(would)}."
    )


class Applier:
    """Plans one page and applies it at once (an update without guard rails, page
    by page): what tests use to apply a single page in isolation."""

    def __init__(self, run: Run, store: Store) -> None:
        self.run = run
        run.store = store
        self.planner = Planner(run, store)
        self.writer = PlanWriter(run, held=False)

    def apply(self, batch: list[ErpItem], stats: FeedStats) -> None:
        run = self.run
        written = run.stock_changed, run.price_changed
        changes = self.planner.plan(batch, stats)
        # The writer counts what it writes, not what was planned.
        run.stock_changed, run.price_changed = written
        self.writer.write(changes, stats)


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
