"""An undo's page against a CSV import of the same store, at once (PostgreSQL's row
locks; docs/sync-correctness.md U1 and R6): the undo waits for the import, then
finds the import's values and leaves those items alone. Neither fails."""

import io
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections

from catalog import csv_import
from catalog.models import ChangeSource, Item
from erp import undo
from erp.models import IssueKind, RunStatus
from stores.models import Store
from tests.erp.sync_helpers import connect, make_items, sync
from tests.erp.test_engine_apply import wait_until, waits_for_a_lock
from tests.erp.test_undo import erp_row

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_undo_page_waits_for_a_csv_import_and_leaves_what_it_changed(
    store: Store, standin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time")
    early = [f"A-{i:02d} #ñ" for i in range(5)]  # first by id: the undo locks them first
    late = [f"Z-{i:02d} +5%" for i in range(5)]
    make_items(store, [(sku, 1, "1.00") for sku in early + late])
    connect(store, standin)
    standin.load([erp_row(standin, sku.lower(), "3.000", "3.00") for sku in early + late])
    update = sync(store, full=True)
    assert update.stock_changed == 10
    queued = undo.request_undo(store, update.pk, origin="cli", enqueue=False)

    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 5)
    first_chunk_written, go_on = threading.Event(), threading.Event()
    apply_chunk = csv_import._apply_chunk

    def pausing_after_the_first_chunk(*args: Any, **kwargs: Any) -> None:
        apply_chunk(*args, **kwargs)
        if not first_chunk_written.is_set():
            first_chunk_written.set()
            go_on.wait(timeout=60)

    monkeypatch.setattr(csv_import, "_apply_chunk", pausing_after_the_first_chunk)
    # The file's first chunk is the Z items, its second the A items.
    csv = "sku,name,stock,wholesale_price\n" + "".join(
        f'"{sku}",Ítem {sku},2,3.00\n' for sku in late + early
    )
    failures: list[BaseException] = []

    def in_a_thread(work: Callable[[], Any]) -> threading.Thread:
        def run_it() -> None:
            try:
                work()
            except BaseException as e:  # reported below
                failures.append(e)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run_it)
        thread.start()
        return thread

    importer = in_a_thread(
        lambda: csv_import.import_csv(store, io.BytesIO(csv.encode()), actor="CSV")
    )
    assert first_chunk_written.wait(timeout=60)
    undoer = in_a_thread(lambda: undo.execute_undo(queued.pk))
    wait_until(waits_for_a_lock, "the undo's page waits for the import")
    go_on.set()
    importer.join()
    undoer.join()

    assert not failures
    queued.refresh_from_db()
    assert (queued.status, queued.changed_meanwhile, queued.stock_changed) == (
        RunStatus.WARNINGS,
        10,
        0,
    ), queued.error_message
    assert queued.issues.filter(kind=IssueKind.CHANGED_MEANWHILE).count() == 10
    for item in Item.objects.filter(store=store):
        assert (item.stock, item.wholesale_price) == (2, Decimal("3.00"))
        assert not item.changes.filter(source=ChangeSource.UNDO).exists()
