"""`vxm scheduler`: the clock of scheduled updates (django-crontask's `crontask`).

It enqueues `erp.tasks.enqueue_due_updates` every minute; a worker (`vxm
db_worker`) runs it and requests the updates of the stores that are due. Two
schedulers running at once are safe (each store is claimed in the database,
see erp/schedule.py): a second one only adds a tick.
"""

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Reloj de las actualizaciones automáticas: cada minuto encola la tarea que pide las "
        "de las tiendas programadas; siempre encendido (uno basta; dos no duplican nada)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        # Without crontask's heartbeat task: it would only add a row a minute to the queue.
        call_command("crontask", "--no-heartbeat", stdout=self.stdout, stderr=self.stderr)
