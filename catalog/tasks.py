"""Background work of the catalog, through Django's tasks framework (ids only)."""

from django.tasks import task

from catalog.background_import import run_queued_import


@task()
def apply_import(import_id: int) -> None:
    run_queued_import(import_id)
