"""Background work, through Django's tasks framework (django.tasks).

Tasks receive ids only; `execute_run` reloads the run and re-checks that the
user who asked still administers the store.
"""

from crontask import cron
from django.tasks import task

from erp import schedule
from erp.engine import execute_run
from erp.progress import record_total


@task()
def run_update(run_id: int) -> None:
    # record_total keeps the ERP's announced total on the run for the pages' progress bar.
    run = execute_run(run_id, progress=record_total)
    # After the engine, not inside it: what a scheduled run's outcome means for
    # its schedule (backoff, pause) and its admins (an email) is not the engine's.
    schedule.record_outcome(run)


# The clock: `vxm scheduler` (django-crontask) enqueues this every minute; a
# worker runs it. Safe with any number of schedulers: each store is claimed by a
# conditional UPDATE (erp/schedule.py).
@cron("* * * * *")
@task()
def enqueue_due_updates() -> None:
    schedule.enqueue_due_updates()


@task()
def run_undo(run_id: int) -> None:
    # Imported here: erp.undo imports this module to enqueue.
    from erp.undo import execute_undo

    execute_undo(run_id)
