"""`vxm erp sync`'s progress (a tqdm bar on a terminal, plain lines in a pipe,
nothing with --json) and `vxm erp cancel` / `vxm erp runs` for cancelled runs.

The progress tests run `vxm` as a process of its own: stderr on a real
pseudo-terminal (`pty`) or a pipe, so what is tested is what an operator sees.
"""

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from erp.engine import claim, request_update
from erp.models import AuditAction, AuditEvent, Run, RunStatus
from erp.terminal_progress import PLAIN_EVERY, PlainLines
from nonsistemas_standin.faults import Fault
from stores.models import Store
from tests.erp.sync_helpers import connect
from tests.erp.test_cli import vxm
from tests.erp.test_run_lifecycle import _store_for_a_worker


@pytest.fixture
def worker_store(tmp_path: Path, standin: Any) -> tuple[dict[str, str], Any]:
    """Store "k" (30 items, pages of 10) in a database of its own; each page of
    the stand-in answers after 0.3 s, so the bar has time to be drawn."""
    env, run_vxm, _query = _store_for_a_worker(tmp_path, standin)
    standin.inject(Fault(kind="delay", path="/api/stock", delay=0.3, times=100))
    return env, run_vxm


def run_on_a_terminal(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run `vxm ARGS` with stderr on a pseudo-terminal; (exit, stdout, terminal output).

    The pseudo-terminal keeps its initial size, 0 x 0, as some CI runners' do: the
    bar must still show (COLUMNS wide)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "vxm", *args],
        env={**env, "COLUMNS": "120"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 60)
        if not ready:
            process.kill()
            raise AssertionError(f"vxm wrote nothing for 60 s; so far: {seen!r}")
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the process closed the terminal (Linux: EIO)
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    assert process.stdout is not None
    out = process.stdout.read().decode()
    return process.wait(timeout=60), out, seen.decode()


def test_sync_on_a_terminal_draws_a_bar_with_total_rate_and_estimate(worker_store):
    env, _ = worker_store
    code, out, terminal = run_on_a_terminal(env, "erp", "sync", "k")
    assert code == 0, terminal
    assert "\r" in terminal  # redrawn in place
    assert "Actualización #1: 100%|" in terminal
    assert "30/30 ítems" in terminal
    assert "ítems/s" in terminal and "faltan" in terminal
    assert re.search(r"30/30 ítems .*, \d+ páginas", terminal), terminal
    # The summary still goes to stdout, untouched by the bar.
    assert out.startswith("Actualización #1: Completada")


def test_sync_in_a_pipe_writes_plain_lines(worker_store):
    _, run_vxm = worker_store
    done = run_vxm("erp", "sync", "k")
    lines = done.stderr.splitlines()
    progress = [line for line in lines if line.startswith("Actualización #1:")]
    assert progress, done.stderr
    assert progress[0].startswith("Actualización #1: 10 de 30 ítems (33 %), 1 página")
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    assert done.stdout.startswith("Actualización #1: Completada")


def test_sync_json_prints_only_the_json(worker_store):
    env, run_vxm = worker_store
    done = run_vxm("erp", "sync", "k", "--json")
    # No progress at all (the log's one line about the login stays, on stderr).
    assert "Actualización #" not in done.stderr and "\r" not in done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "succeeded" and summary["total_items"] == 30
    # Not even on a terminal.
    code, out, terminal = run_on_a_terminal(env, "erp", "sync", "k", "--full", "--json")
    assert code == 0 and json.loads(out)["counts"]["received"] == 30
    assert "Actualización #" not in terminal and "%|" not in terminal


def test_plain_lines_come_every_few_seconds_not_every_page(store, standin):
    connect(store, standin)
    run = request_update(store, enqueue=False)
    claim(run.pk)
    run.refresh_from_db()
    now = [100.0]
    written: list[str] = []
    lines = PlainLines(written.append, clock=lambda: now[0])
    stats: Any = type("Stats", (), {"expected": 500, "pages": 1})()
    for received in (100, 200, 300):
        run.received = received
        lines(run, stats)
        now[0] += PLAIN_EVERY / 3
    assert written == [f"Actualización #{run.pk}: 100 de 500 ítems (20 %), 0 páginas"]
    now[0] += PLAIN_EVERY
    run.received = 400
    lines(run, stats)
    assert len(written) == 2 and "400 de 500 ítems (80 %)" in written[1]
    # The ERP's total is kept on the run, for the panel's bar.
    assert Run.objects.get(pk=run.pk).total_items == 500


# ---- vxm erp cancel ------------------------------------------------------------------


def test_cancel_a_queued_run_from_the_command_line(store, standin):
    connect(store, standin)
    run = request_update(store, enqueue=False)
    out, _ = vxm("cancel", "sur")
    assert f"Actualización #{run.pk} cancelada" in out
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.cancel_origin == "cli"
    event = AuditEvent.objects.get(action=AuditAction.CANCEL_REQUESTED)
    assert event.actor == "Línea de comandos" and event.user is None


def test_cancel_a_running_run_by_its_number(store, standin):
    connect(store, standin)
    run = request_update(store, enqueue=False)
    claim(run.pk)
    out, _ = vxm("cancel", "sur", str(run.pk))
    assert f"Cancelando la actualización #{run.pk}" in out
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.cancel_requested_at is not None
    again, _ = vxm("cancel", "sur", str(run.pk))
    assert "Ya se pidió cancelar" in again and "Línea de comandos" in again


def test_cancel_with_nothing_to_cancel_says_so(store, other_store, standin):
    connect(store, standin)
    with pytest.raises(CommandError, match="no tiene ninguna actualización en cola ni en curso"):
        vxm("cancel", "sur")
    run = request_update(store, enqueue=False)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, finished_at=timezone.now())
    with pytest.raises(CommandError, match=f"#{run.pk} ya terminó \\(falló\\)"):
        vxm("cancel", "sur", str(run.pk))
    # Another store's run number is not this store's.
    with pytest.raises(CommandError, match=f"norte no tiene ninguna actualización #{run.pk}"):
        vxm("cancel", "norte", str(run.pk))
    assert not AuditEvent.objects.filter(action=AuditAction.CANCEL_REQUESTED).exists()


def test_runs_lists_cancelled_runs_and_who_cancelled_them(store: Store, standin):
    connect(store, standin)
    run = request_update(store, enqueue=False)
    vxm("cancel", "sur")
    table, _ = vxm("runs", "sur")
    assert "Cancelada" in table.splitlines()[1]
    (listed,) = json.loads(vxm("runs", "sur", "--json")[0])
    assert listed["id"] == run.pk and listed["status"] == "cancelled"
    assert listed["cancelled_by"] == "Línea de comandos" and listed["cancel_requested_at"]
