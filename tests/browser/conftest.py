"""Real-browser tests: Debian's chromium driven by Playwright.

The tests never download a browser: they use /usr/bin/chromium. Without it (or
without the `playwright` package) they skip with the reason, unless
VXM_REQUIRE_BROWSER=1 (CI sets it), which makes that a failure.

Each test gets a fresh browser profile (user-data dir) under pytest's tmp_path,
a Spanish (Argentina) locale and the store's time zone, and fails on any
JavaScript error or any failed request for a script or stylesheet: a page whose
htmx did not load must not pass for one that works.

Screenshots go to /tmp/vxm-screens/ (VXM_SCREENS overrides it), never into the repo.
"""

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous for a loaded CI machine; a passing run never waits this long.
TIMEOUT_MS = 15_000
SCREENS = Path(os.environ.get("VXM_SCREENS", "/tmp/vxm-screens"))


def _browser_missing_reason() -> str | None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.lock)"
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    reason = _browser_missing_reason()
    if reason is not None:
        if os.environ.get("VXM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}, and VXM_REQUIRE_BROWSER=1 makes browser tests required.")
        pytest.skip(f"{reason}; set VXM_REQUIRE_BROWSER=1 to make this an error")
    return CHROMIUM


@pytest.fixture
def page(chromium_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    # Playwright's sync API keeps an asyncio loop in this thread (run from a
    # greenlet), so Django's guard would take the test's own ORM calls (fixtures,
    # assertions) for async code. They are not: the loop never runs Django.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    expect.set_options(timeout=TIMEOUT_MS)
    problems: list[str] = []
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "chromium-profile"),
            executable_path=chromium_path,
            headless=True,
            args=CHROMIUM_ARGS,
            locale="es-AR",
            timezone_id="America/Argentina/Buenos_Aires",
            viewport={"width": 1280, "height": 900},
        )
        try:
            context.set_default_timeout(TIMEOUT_MS)
            page = context.pages[0] if context.pages else context.new_page()
            page.on("pageerror", lambda error: problems.append(f"JavaScript error: {error}"))
            page.on(
                "console",
                lambda msg: (
                    problems.append(f"console {msg.type}: {msg.text}")
                    # A failed resource is reported, with its URL, by the response check.
                    if msg.type == "error" and not msg.text.startswith("Failed to load resource")
                    else None
                ),
            )
            # Scripts and stylesheets only: an htmx poll cut short by a click on a
            # link is aborted by design.
            page.on(
                "requestfailed",
                lambda request: (
                    problems.append(
                        f"request failed: {request.method} {request.url} ({request.failure})"
                    )
                    if request.resource_type in {"script", "stylesheet"}
                    else None
                ),
            )
            page.on(
                "response",
                lambda response: (
                    problems.append(f"HTTP {response.status}: {response.url}")
                    # The product has no favicon yet; chromium asks for one anyway.
                    if response.status >= 400 and not response.url.endswith("/favicon.ico")
                    else None
                ),
            )
            yield page
        finally:
            context.close()
            # ORM calls made while Playwright's loop runs get their own database
            # connections (asgiref's context-local storage); close them here, in
            # that same context, or they outlive the test and block dropping the
            # test database.
            from django.db import connections

            connections.close_all()
    assert not problems, "the browser saw problems:\n" + "\n".join(problems)


@pytest.fixture(scope="session")
def _screens_dir() -> Path:
    shutil.rmtree(SCREENS, ignore_errors=True)
    SCREENS.mkdir(parents=True, exist_ok=True)
    return SCREENS


@pytest.fixture
def screenshot(page: Any, _screens_dir: Path) -> Callable[[str], Path]:
    """screenshot("03-erp-before") saves the whole page as /tmp/vxm-screens/03-erp-before.png."""

    def shoot(name: str) -> Path:
        path = _screens_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shoot


def _database_url() -> str:
    """The URL of the database this test process uses (the test database)."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        credentials = quote(db.get("USER") or "", safe="")
        if db.get("PASSWORD"):
            credentials += ":" + quote(db["PASSWORD"], safe="")
        host = db.get("HOST") or "127.0.0.1"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{credentials}{'@' if credentials else ''}{host}{port}/{db['NAME']}"
    raise NotImplementedError(f"no DATABASE_URL for a {connection.vendor} test database")


@pytest.fixture
def run_worker(transactional_db: None, settings: Any) -> Callable[[], str]:
    """Run the task worker once, as its own process, like production does.

    `vxm db_worker --batch` takes every queued task of the test database, runs
    it and exits. It gets this test's settings through the environment: the same
    database, encryption keys and local-ERP switch.
    """
    import subprocess
    import sys

    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "VXM_ENCRYPTION_KEYS": ",".join(settings.VXM_ENCRYPTION_KEYS),
        "VXM_ALLOW_LOCAL_ERP": "1" if settings.VXM_ALLOW_LOCAL_ERP else "0",
    }
    env.pop("VXM_TASK_BACKEND", None)  # the database queue, as in production

    def run() -> str:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "vxm",
                "db_worker",
                "--queue-name",
                "default,full",
                "--batch",
                "--no-startup-delay",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"the worker failed (exit {done.returncode}):\n{output}"
        return output

    return run


def log_in(page: Any, base_url: str, email: str) -> None:
    """Log in through the login page; with one store, it lands on its catalog."""
    from playwright.sync_api import expect

    from tests.conftest import TEST_PASSWORD

    page.goto(base_url + "/")
    expect(page.get_by_role("heading", name="Ingresar")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Contraseña").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Ingresar").click()
    expect(page.get_by_role("heading", name="Catálogo")).to_be_visible()
