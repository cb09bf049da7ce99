"""Large CSV files: validated in the request, applied by a background task, the
admin following along on the import's page."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from catalog import background_import
from catalog.background_import import run_queued_import
from catalog.models import CatalogImport, ChangeSource, ImportStatus, ItemChange
from stores.models import Membership, Store
from tests.catalog.conftest import MakeItem, snapshot, upload
from tests.catalog.test_import import HEADER, items

GOOD = HEADER + "ACE-1,Aceite,8,120.50\nTOR-1,Tornillo,0,3400\nHAR-1,Harina,7,50\n"


@pytest.fixture(autouse=True)
def _every_file_is_large(settings: Any) -> None:
    settings.VXM_CSV_INLINE_BYTES = 10


@pytest.fixture
def existing(store: Store, make_item: MakeItem) -> tuple[list[tuple[Any, ...]], int]:
    make_item("ACE-1", "Aceite", stock=5, price="100.00")
    return snapshot(store)


def detail_url(store: Store, job: CatalogImport) -> str:
    return reverse("catalog:import_detail", args=[store.slug, job.pk])


def test_a_large_file_is_checked_at_once_then_applied_in_the_background(
    admin_client: Client,
    store: Store,
    admin_user: Any,
    existing: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as enqueued:
        response = upload(admin_client, store, GOOD, name="lista-octubre.csv")
    job = CatalogImport.objects.get(store=store)
    assert response.status_code == 302 and response.url == detail_url(store, job)
    assert len(enqueued) == 1  # the task, once the import's row is committed
    assert (job.status, job.rows, job.filename) == (ImportStatus.QUEUED, 3, "lista-octubre.csv")
    assert snapshot(store) == existing  # nothing written yet

    page = admin_client.get(detail_url(store, job)).content.decode()
    assert "En cola" in page and "3 filas" in page
    assert 'hx-trigger="every 2s"' in page  # it follows the import by itself

    job = run_queued_import(job.pk)
    assert job.status == ImportStatus.DONE and bytes(job.content) == b""
    assert items(store) == {
        "ACE-1": ("Aceite", 8, Decimal("120.50")),
        "TOR-1": ("Tornillo", 0, Decimal("3400.00")),
        "HAR-1": ("Harina", 7, Decimal("50.00")),
    }
    change = ItemChange.objects.get(item__sku="ACE-1")
    assert change.source == ChangeSource.CSV and change.user == admin_user

    # The page's poll now gets the report and stops polling.
    poll = admin_client.get(detail_url(store, job), headers={"HX-Request": "true"})
    fragment = poll.content.decode()
    assert "<html" not in fragment and 'hx-trigger="every 2s"' not in fragment
    assert "Resultado" in fragment
    report = poll.context["report"]
    assert (report.rows, report.created, report.updated, report.unchanged) == (3, 2, 1, 0)


def test_a_large_file_with_a_bad_row_is_reported_at_once_and_nothing_is_queued(
    admin_client: Client, store: Store, existing: Any
) -> None:
    response = upload(admin_client, store, GOOD + "MAL-1,Malo,-3,10\n")
    assert response.status_code == 200
    report = response.context["report"]
    assert [e.line for e in report.errors] == [5] and not report.applied
    assert not CatalogImport.objects.exists()
    assert snapshot(store) == existing


def test_an_import_delivered_twice_is_applied_once(
    admin_client: Client, store: Store, existing: Any
) -> None:
    upload(admin_client, store, GOOD)
    job = CatalogImport.objects.get()
    run_queued_import(job.pk)
    changes = ItemChange.objects.count()
    again = run_queued_import(job.pk)
    assert again.status == ImportStatus.DONE
    assert ItemChange.objects.count() == changes


def test_an_import_that_fails_to_apply_writes_nothing_and_says_why(
    admin_client: Client, store: Store, existing: Any, monkeypatch: Any
) -> None:
    upload(admin_client, store, GOOD)
    job = CatalogImport.objects.get()

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("catalog.csv_import._apply_chunk", crash)
    job = run_queued_import(job.pk)
    assert job.status == ImportStatus.FAILED
    assert snapshot(store) == existing
    page = admin_client.get(detail_url(store, job)).content.decode()
    assert "No se importó nada: falló por un error interno nuestro" in page


def test_an_import_no_worker_picked_up_is_shown_as_interrupted(
    admin_client: Client, store: Store, existing: Any
) -> None:
    upload(admin_client, store, GOOD)
    job = CatalogImport.objects.get()
    CatalogImport.objects.filter(pk=job.pk).update(created_at=job.created_at - timedelta(hours=2))
    page = admin_client.get(detail_url(store, job)).content.decode()
    assert "la importación se interrumpió" in page
    assert run_queued_import(job.pk).status == ImportStatus.FAILED  # a late worker does nothing
    assert snapshot(store) == existing


def test_another_stores_import_is_not_found(
    admin_client: Client, store: Store, other_store: Store, make_item: MakeItem
) -> None:
    theirs = CatalogImport.objects.create(store=other_store, actor="x", filename="suyo.csv")
    assert admin_client.get(detail_url(store, theirs)).status_code == 404
    assert admin_client.get(detail_url(other_store, theirs)).status_code == 404


def test_small_files_still_apply_in_the_request(
    admin_client: Client, store: Store, existing: Any, settings: Any
) -> None:
    settings.VXM_CSV_INLINE_BYTES = 1024 * 1024
    response = upload(admin_client, store, GOOD)
    assert response.status_code == 200 and response.context["report"].applied
    assert not CatalogImport.objects.exists()


def test_an_uploader_no_longer_allowed_gets_nothing_imported(
    admin_client: Client, store: Store, admin_user: Any, existing: Any
) -> None:
    upload(admin_client, store, GOOD)
    upload(admin_client, store, GOOD)
    removed, deleted = CatalogImport.objects.order_by("pk")
    Membership.objects.filter(user=admin_user).delete()
    assert run_queued_import(removed.pk).status == ImportStatus.FAILED
    get_user_model().objects.filter(pk=admin_user.pk).delete()  # the import keeps no user
    job = run_queued_import(deleted.pk)
    assert job.status == ImportStatus.FAILED
    assert job.report is not None
    assert "ya no administra esta tienda" in job.report["file_error"]
    assert snapshot(store) == existing


def test_an_import_taken_late_by_a_worker_is_not_declared_interrupted_while_it_runs(
    admin_client: Client, store: Store, existing: Any, monkeypatch: Any
) -> None:
    upload(admin_client, store, GOOD)
    job = CatalogImport.objects.get()
    # It waited in the queue for most of the stale limit before a worker took it.
    CatalogImport.objects.filter(pk=job.pk).update(
        created_at=job.created_at - background_import.STALE_AFTER - timedelta(minutes=1)
    )
    polls: list[str] = []
    real_import = background_import.import_csv

    def import_while_the_page_polls(*args: Any, **kwargs: Any) -> Any:
        polls.append(
            admin_client.get(
                detail_url(store, job), headers={"HX-Request": "true"}
            ).content.decode()
        )
        return real_import(*args, **kwargs)

    monkeypatch.setattr(background_import, "import_csv", import_while_the_page_polls)
    assert run_queued_import(job.pk).status == ImportStatus.DONE
    assert "Importando" in polls[0] and "se interrumpió" not in polls[0]


def test_a_worker_killed_after_writing_leaves_the_import_recorded_as_done_or_nothing_written(
    admin_client: Client, store: Store, existing: Any, monkeypatch: Any
) -> None:
    upload(admin_client, store, GOOD)
    job = CatalogImport.objects.get()

    class Killed(BaseException):  # what SIGTERM's SystemExit or an OOM kill amounts to
        pass

    def killed_before_recording(*args: Any, **kwargs: Any) -> None:
        raise Killed

    monkeypatch.setattr(background_import, "_record_outcome", killed_before_recording)
    with pytest.raises(Killed):
        run_queued_import(job.pk)
    # The catalog's writes went with the outcome that was never recorded.
    assert snapshot(store) == existing
    assert CatalogImport.objects.get(pk=job.pk).status == ImportStatus.RUNNING


def test_the_page_and_its_poll_are_cached_apart(admin_client: Client, store: Store) -> None:
    upload(admin_client, store, GOOD)
    job = CatalogImport.objects.get()
    response = admin_client.get(detail_url(store, job), headers={"HX-Request": "true"})
    assert "HX-Request" in response["Vary"]
