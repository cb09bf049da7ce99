"""Background work, through Django's tasks framework (django.tasks).

Tasks receive ids only; `execute_run` reloads the run and re-checks that the
user who asked still administers the store.
"""

from django.tasks import task

from erp.engine import execute_run


@task()
def run_update(run_id: int) -> None:
    execute_run(run_id)


@task()
def run_undo(run_id: int) -> None:
    # Imported here: erp.undo imports this module to enqueue.
    from erp.undo import execute_undo

    execute_undo(run_id)
