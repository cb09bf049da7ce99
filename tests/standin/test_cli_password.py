"""The stand-in takes its API password from the environment, so that it never
shows in `ps`; `--password` (unsafe, for throwaway test passwords) still wins."""

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.standin.test_cli import listening


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def start(started: list[subprocess.Popen[str]], *args: str, **env: str) -> str:
    process = subprocess.Popen(
        [sys.executable, "-m", "nonsistemas_standin", "--port", "0", "--items", "1", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    started.append(process)
    return listening(process).group(1)


def login(url: str, password: str) -> int:
    with httpx.Client(base_url=url, trust_env=False) as http:
        return http.post(
            "/api/login", json={"usuario": "api-ventas", "clave": password}
        ).status_code


def test_the_password_comes_from_the_environment(started):
    url = start(started, NONSISTEMAS_STANDIN_PASSWORD="clave ñandú #1")
    assert login(url, "clave ñandú #1") == 200
    assert login(url, "s3cret") == 401
    # Not on its command line.
    with open(f"/proc/{started[0].pid}/cmdline", "rb") as cmdline:
        assert "ñandú".encode() not in cmdline.read()


def test_the_unsafe_option_still_works_and_wins(started):
    url = start(started, "--password", "p1", NONSISTEMAS_STANDIN_PASSWORD="p2")
    assert login(url, "p1") == 200
    assert login(url, "p2") == 401
