"""Stopping a run when its process is asked to end (SIGTERM on a deploy, Ctrl-C).

While a run executes, `stop_on_signals` takes SIGTERM and SIGINT. The run then
stops at the next page boundary and records itself as interrupted: the pages it
applied stay (each one committed whole), the watermark does not move, and the
store can update again at once instead of waiting for the run to be declared dead.

A page boundary is either side of applying a page. Waiting for the ERP (a page
request, which with retries may take up to the client's deadline) is a boundary
too: nothing is half written while we wait, so the signal interrupts the wait
itself (`StopRequested` is raised from the handler, but only inside
`interruptible`), and the process ends promptly. Applying a page is never
interrupted: the signal is noted, and the run stops once the page is committed.

The previous handler is kept and also called when it is one of Python's own
(not the default ones): under `vxm db_worker`, django_tasks_db's handler then
notes that the worker must take no further task and exit once this one returns
(its second signal, "press Ctrl+C again to force", still exits at once).
"""

import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested(BaseException):
    """Raised at a page boundary once the process was asked to end.

    A BaseException, like KeyboardInterrupt: no `except Exception` on the way
    (a retry loop, say) may swallow it and carry on.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _State(threading.local):
    # Per thread: only the main thread's wait can be cut short by a signal (Python
    # runs handlers there); a run in a worker thread of `vxm erp worker --threads`
    # looks at `requested` at its page boundaries instead.
    interruptible = False  # waiting for the ERP, nothing half written


class _Process:
    requested: int | None = None  # the signal received, if any: one for all threads


_state = _State()
_process = _Process()


def requested() -> int | None:
    """The signal that asked this process to end during the last run, if any."""
    return _process.requested


def request_stop(signum: int) -> None:
    """Ask every run of this process to stop at its next page boundary (the handler
    of a threaded worker, whose runs do not run on the main thread)."""
    _process.requested = signum


def check() -> None:
    """At a page boundary: stop here if the process was asked to end."""
    if _process.requested is not None:
        raise StopRequested(_process.requested)


@contextmanager
def interruptible() -> Iterator[None]:
    """Waiting for the ERP: a signal received now stops the run at once."""
    check()
    _state.interruptible = True
    try:
        yield
    finally:
        _state.interruptible = False


@contextmanager
def shielded() -> Iterator[None]:
    """A database write inside an interruptible wait (the heartbeat): it finishes
    before a signal received meanwhile stops the run."""
    was, _state.interruptible = _state.interruptible, False
    try:
        yield
    finally:
        _state.interruptible = was
    if was:
        check()


def _handle(previous: Mapping[int, Any]) -> Any:
    def handle(signum: int, frame: FrameType | None) -> None:
        _process.requested = signum
        before = previous.get(signum)
        if callable(before) and before is not signal.default_int_handler:
            before(signum, frame)
        if _state.interruptible:
            _state.interruptible = False
            raise StopRequested(signum)

    return handle


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Take SIGTERM and SIGINT for the duration of a run (main thread only:
    Python delivers signals there, and a run in another thread is not the
    process's to stop, nor is the signal it received to forget: in a threaded
    worker the main thread's handler stops all runs, see `request_stop`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _process.requested = None
    previous: dict[int, Any] = {int(signum): signal.getsignal(signum) for signum in SIGNALS}
    handler = _handle(previous)
    for sig in SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for number, before in previous.items():
            signal.signal(number, before)
