"""Background work of the project as a whole, through Django's tasks framework."""

from crontask import cron
from django.tasks import task

from vxm import retention


# Daily, at a quiet hour (the server's TIME_ZONE): `vxm scheduler` enqueues it, a
# worker runs it. Safe if two schedulers enqueue it twice (vxm/retention.py).
@cron("17 4 * * *")
@task()
def prune_old_records() -> dict[str, int]:
    """Daily: delete what is older than the retention (vxm/retention.py). Returns the
    counts per table, which the task's result keeps."""
    return retention.prune().counts
