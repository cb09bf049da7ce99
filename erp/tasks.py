"""Background work, through Django's tasks framework (django.tasks).

Tasks receive ids only; `execute_run` reloads the run and re-checks that the
user who asked still administers the store.
"""

from django.tasks import task

from erp.engine import execute_run
from erp.progress import record_total


@task()
def run_update(run_id: int) -> None:
    # record_total keeps the ERP's announced total on the run for the pages' progress bar.
    execute_run(run_id, progress=record_total)
