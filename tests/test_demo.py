"""`scripts/demo`, run as a new user runs it: every process it leaves running
keeps the passwords off its command line, and the stand-in one-liner it prints
works whatever port the stand-in got.

One real run (about 30 s: migrations, 3,500 demo items, the web server, the
worker and the stand-in), in its own var/ under pytest's tmp_path, stopped with
its whole process group at the end.
"""

import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nonsistemas_standin import StandinClient

BASE_DIR = Path(__file__).resolve().parent.parent
# The scheduler ticks at the next minute; the worker then requests and runs the update.
SCHEDULED_RUN_SECONDS = 180
STARTUP_SECONDS = 240  # a loaded 2-core CI machine; a passing run never waits this long


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_processes(session: int) -> dict[int, list[str]]:
    """pid → command line of every live process in that session (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == session and cmdline:
            found[int(entry.name)] = cmdline.decode(errors="replace").rstrip("\0").split("\0")
    return found


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str], Path]]:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux /proc to read the processes' command lines")
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VXM_") and k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL"}
    }
    env = {
        **clean,
        "VXM_VAR_DIR": str(tmp_path / "var"),
        "VXM_PORT": str(free_port()),
        "VXM_STANDIN_PORT": "0",  # any free port: nothing may assume 8765
    }
    process = subprocess.Popen(
        ["scripts/demo"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, to stop all of it
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    output: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while not output or "Ctrl-C stops everything" not in output[-1]:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "the demo stopped:\n" + "".join(output)
            output.append(line)
        yield process, output, tmp_path / "var"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_demo_keeps_passwords_off_command_lines_and_prints_a_working_one_liner(demo):
    process, output, var = demo
    secrets = dict(
        line.split("=", 1) for line in (var / "demo.env").read_text().splitlines() if "=" in line
    )
    passwords = [secrets["VXM_DEMO_ERP_PASSWORD"], secrets["VXM_DEMO_ADMIN_PASSWORD"]]

    running = session_processes(process.pid)
    commands = [" ".join(argv) for argv in running.values()]
    # The check looks at the processes that matter: they are all there.
    assert any("nonsistemas-standin" in c for c in commands), commands
    assert any("db_worker" in c for c in commands), commands
    assert any("gunicorn" in c for c in commands), commands
    assert any("scheduler" in c for c in commands), commands
    for command in commands:
        for password in passwords:
            assert password not in command, command

    # The stand-in's URL, as it says itself, is the one the demo printed and used.
    log = (var / "standin.log").read_text()
    standin_url = re.search(r"listening on (\S+) ", log).group(1)  # type: ignore[union-attr]
    assert not standin_url.endswith(":8765")
    text = "".join(output)
    assert f"NonSistemas stand-in:       {standin_url}\n" in text
    [one_liner] = [line.strip() for line in output if "StandinClient as C" in line]
    assert f"C('{standin_url}')" in one_liner

    # The printed command works as printed, from the project's folder.
    subprocess.run(one_liner, shell=True, cwd=BASE_DIR, check=True, timeout=60)
    [item] = [i for i in StandinClient(standin_url).items() if i["codigo"].strip() == "ACE-0001"]
    assert item["precio_mayorista"] == "99999.00"


def test_the_demo_store_updates_itself_with_no_click(demo):
    """Scheduled every 15 minutes by `vxm demo`: `vxm scheduler` ticks at the next
    minute, the worker requests and runs the update (issue #10's "in the demo too")."""
    _process, output, var = demo
    deadline = time.monotonic() + SCHEDULED_RUN_SECONDS
    found = None
    while found is None and time.monotonic() < deadline:
        with sqlite3.connect(var / "vxm.sqlite3", timeout=30) as db:
            found = db.execute(
                "SELECT status FROM erp_run WHERE origin = 'schedule' "
                "AND status IN ('succeeded', 'warnings', 'failed')"
            ).fetchone()
        if found is None:
            time.sleep(1)  # polling the demo's database for the outcome, not a stand-in for it
    assert found is not None, "no scheduled update finished:\n" + "".join(output)
    assert found[0] in ("succeeded", "warnings"), (var / "worker.log").read_text()[-3000:]
