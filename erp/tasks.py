"""Background work, through Django's tasks framework (django.tasks).

Tasks receive ids only; `execute_run` reloads the run and re-checks that the
user who asked still administers the store.

Two queues: a big run (a full update, or a store's first one, which reads the
whole catalog too) goes to FULL_QUEUE, served by workers of its own, so that a
300,000-item update never holds back the small incremental ones of other
stores on the default queue (docs/deployment.md).
"""

from crontask import cron
from django.tasks import DEFAULT_TASK_QUEUE_NAME, task

from erp import notifications, schedule
from erp.engine import execute_run
from erp.models import Connection, Run, RunStatus
from erp.progress import record_total

FULL_QUEUE = "full"


@task()
def run_update(run_id: int) -> None:
    # record_total keeps the ERP's announced total on the run for the pages' progress bar.
    run = execute_run(run_id, progress=record_total)
    # After the engine, not inside it: what a scheduled run's outcome means for
    # its schedule (backoff, pause) and its admins (an email) is not the engine's.
    schedule.record_outcome(run)
    if run.status == RunStatus.HELD:
        # A held automatic update waits for a person: tell the store's admins (once).
        notifications.notify_held(run)


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


def queue_for(run: Run) -> str:
    """The queue a run belongs on: FULL_QUEUE when it reads the whole catalog."""
    if run.full:
        return FULL_QUEUE
    watermark = Connection.objects.filter(store_id=run.store_id).values_list("watermark", flat=True)
    # No watermark: an incremental run of a store never updated reads everything.
    return FULL_QUEUE if watermark.first() is None else DEFAULT_TASK_QUEUE_NAME


def enqueue_run(run: Run) -> None:
    """Enqueue a recorded run's task on its queue (call it once the run is committed)."""
    queue = queue_for(run)
    if queue not in run_update.get_backend().queues:
        # A task backend configured with one queue (the immediate one of a test,
        # an operator's own TASKS) runs everything there.
        queue = DEFAULT_TASK_QUEUE_NAME
    run_update.using(queue_name=queue).enqueue(run.pk)
