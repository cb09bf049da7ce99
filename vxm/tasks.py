"""Background work of the project as a whole, through Django's tasks framework."""

from django.tasks import task

from vxm import retention


@task()
def prune_old_records() -> dict[str, int]:
    """Daily: delete what is older than the retention (vxm/retention.py). Returns the
    counts per table, which the task's result keeps."""
    return retention.prune().counts
