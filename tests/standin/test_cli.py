"""The command line: start, print the URL, serve, stop cleanly on SIGTERM/SIGINT."""

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from nonsistemas_standin import StandinClient
from nonsistemas_standin.cli import main

LINE = re.compile(
    r"^NonSistemas stand-in listening on (http://127\.0\.0\.1:\d+\S*) \((\d+) items, user (\S+)\)$"
)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nonsistemas_standin", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def listening(process: subprocess.Popen[str]) -> re.Match[str]:
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline().rstrip("\n")  # blocks until the line is flushed
    match = LINE.match(line)
    assert match, (line, process.stderr.read() if process.poll() is not None else "")
    return match


def test_serves_until_sigterm(processes: list[subprocess.Popen[str]]) -> None:
    process = start(
        "--items", "50", "--prefix", "/ns", "--user", "u1", "--password", "p1",
        "--legacy", "--token-ttl", "300", "--clock-offset", "-7200",
    )  # fmt: skip
    processes.append(process)
    url, count, user = listening(process).groups()
    assert url.endswith("/ns")
    assert (count, user) == ("50", "u1")

    with httpx.Client(base_url=url, trust_env=False) as http:
        assert http.get("/api/version").json()["version"] == "4.1.0"
        login = http.post("/api/login", json={"usuario": "u1", "clave": "p1"}).json()
        assert login["expira_en"] == 300
        body = http.get("/api/stock", headers={"Authorization": f"Bearer {login['token']}"}).json()
        assert body["total_items"] == 50
        assert not isinstance(body["items"][0]["stock"], str)  # legacy numbers
    client = StandinClient(url)
    assert len(client.items()) == 50
    late = datetime.now(UTC) - client.now()
    assert timedelta(minutes=119) < late < timedelta(minutes=121)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_catalog_file_and_sigint(tmp_path: Path, processes: list[subprocess.Popen[str]]) -> None:
    catalog = tmp_path / "catalog.json"
    items = [
        {
            "codigo": " ace-1",
            "stock": "2.5",
            "precio_mayorista": None,
            "modificado": "2026-11-20T14:03:11Z",
        },
        {"codigo": "ACE-2", "stock": "1", "precio_mayorista": "10", "moneda": "USD"},
    ]
    catalog.write_text(json.dumps({"items": items}), encoding="utf-8")
    process = start("--catalog", str(catalog))
    processes.append(process)
    url, count, user = listening(process).groups()
    assert (count, user) == ("2", "api-ventas")
    served = StandinClient(url).items()
    assert [(i["codigo"], i["stock"], i["moneda"]) for i in served] == [
        (" ace-1", "2.500", "ARS"),
        ("ACE-2", "1.000", "USD"),
    ]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--items", "5", "--catalog", str(tmp_path / "x.json")])
    assert exit_info.value.code == 2
    (tmp_path / "bad.json").write_text("[{}]", encoding="utf-8")
    assert main(["--port", "0", "--catalog", str(tmp_path / "bad.json")]) == 1
