"""A task worker that runs several tasks at once: `vxm erp worker --threads N`.

An update spends most of its time waiting for the ERP (100 ms an answer across the
internet), so one run at a time leaves a worker idle. This runs N of
django_tasks_db's own worker loops (`Worker.run`: claim a task with
SELECT ... FOR UPDATE SKIP LOCKED, run it, record its result) in N threads of one
process; each thread has its own database connection (Django's are per thread).
The per-host limits (erp/pacing.py) still hold: they live in the database.

Signals: Python delivers them to the main thread only, and the runs are in the
others, so the main thread takes SIGTERM and SIGINT itself: every loop stops
taking tasks, and `stopping.request_stop` makes every running run stop at its next
page boundary (each records itself as interrupted, whole pages kept, watermark
unchanged); the process ends once they have. A second signal ends it at once
(runs then left "running" are declared dead after STALE_AFTER).
"""

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from django.db import connections
from django_tasks_db.management.commands.db_worker import Worker

from erp import stopping

logger = logging.getLogger("erp.worker")

# A worker's connections live this long (seconds) unless VXM_DB_CONN_MAX_AGE says
# otherwise: a new PostgreSQL connection per task (the default of 0) costs a few
# milliseconds of worker CPU and a backend process start on the server every time.
WORKER_CONN_MAX_AGE = 600


def keep_connections() -> None:
    """Persistent, health-checked connections for this worker process."""
    if "VXM_DB_CONN_MAX_AGE" in os.environ:
        return
    database = connections.settings["default"]
    database["CONN_MAX_AGE"] = WORKER_CONN_MAX_AGE
    database["CONN_HEALTH_CHECKS"] = True


class ThreadedWorker:
    def __init__(
        self,
        *,
        queue_names: list[str],
        threads: int,
        interval: float = 1.0,
        worker_id: str = "",
        backend_name: str = "default",
    ) -> None:
        prefix = worker_id or f"{os.uname().nodename[:30]}-{os.getpid()}"
        self.workers = [
            Worker(
                queue_names=queue_names,
                interval=interval,
                batch=False,
                backend_name=backend_name,
                startup_delay=False,
                max_tasks=None,
                worker_id=f"{prefix}-{n}"[:64],
                excluded_queue_names=[],
            )
            for n in range(threads)
        ]
        self.stopping = False
        self.crashed = False

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            logger.warning("%s otra vez: se termina ya", signal.Signals(signum).name)
            os._exit(1)
        logger.warning(
            "%s: las actualizaciones en curso se detienen al terminar su página",
            signal.Signals(signum).name,
        )
        self.stopping = True
        for worker in self.workers:
            worker.running = False
        stopping.request_stop(signum)

    def run(self) -> None:
        previous: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self.shutdown)
        threads = [
            threading.Thread(target=self._loop, args=(worker,), name=f"vxm-worker-{n}")
            for n, worker in enumerate(self.workers)
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                # A timed join: the main thread must wake up to run signal handlers.
                while thread.is_alive():
                    thread.join(0.2)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
        if self.crashed:
            # Let the process supervisor start a whole new worker.
            raise SystemExit(1)

    def _loop(self, worker: Worker) -> None:
        try:
            worker.run()
        except BaseException:
            # A loop that died (the database gone, say) stops the others too: a
            # worker quietly running on fewer threads would go unnoticed.
            logger.exception("worker loop %s crashed; stopping the worker", worker.worker_id)
            self.crashed = True
            for other in self.workers:
                other.running = False
        finally:
            connections.close_all()
