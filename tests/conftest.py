"""Fixtures shared by the product's tests.

The suite runs on SQLite by default. With DATABASE_URL naming PostgreSQL it runs
there; when that server is unreachable every test skips with the reason, unless
VXM_REQUIRE_POSTGRES=1 (CI sets it), which turns the skip into a failure.
"""

import os
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import translation

from stores.models import Membership, Store

TEST_PASSWORD = "correct horse battery staple"
ERP_USER = "api-ventas"
ERP_PASSWORD = "s3cret-api"


def _postgres_unreachable_reason() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db.get("HOST") or None,
            port=db.get("PORT") or None,
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            dbname=db.get("NAME") or "postgres",
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError as e:
        return f"PostgreSQL at DATABASE_URL is unreachable ({str(e).strip()[:200]})"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _postgres_unreachable_reason()
    if reason is None:
        return
    if os.environ.get("VXM_REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError(f"{reason}, and VXM_REQUIRE_POSTGRES=1 makes it required.")
    skip = pytest.mark.skip(reason=f"{reason}; set VXM_REQUIRE_POSTGRES=1 to make this an error")
    for item in items:
        item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures tests record as a "summary" property (works under xdist)."""
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", [])
        if name == "summary"
    ]
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _product_settings(settings: Any) -> None:
    settings.VXM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    # The stand-in listens on 127.0.0.1 over plain http.
    settings.VXM_ALLOW_LOCAL_ERP = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Each test starts with an empty cache (the process's memory cache would
    otherwise carry, say, a store's cached ambiguous-SKU count to the next test,
    whose store may get the same id)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def store(db: None, request: Any) -> Store:
    store = Store.objects.create(name="Distribuidora Sur", slug="sur")
    if request.node.get_closest_marker("guard_rails") is None:
        # Test data moves many prices tenfold and many stocks to 0 at once, which
        # the guard rails (issue #11) would hold; tests of them ask for them.
        from erp.models import GuardRails

        GuardRails.objects.create(
            store=store, zero_stock_on=False, price_on=False, full_drop_on=False
        )
    return store


@pytest.fixture
def other_store(db: None) -> Store:
    return Store.objects.create(name="Mayorista Norte", slug="norte")


@pytest.fixture
def admin_user(store: Store) -> Any:
    user = get_user_model().objects.create_user(
        username="admin@sur.test", email="admin@sur.test", password=TEST_PASSWORD
    )
    Membership.objects.create(store=store, user=user)
    return user


@pytest.fixture
def admin_client(admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def standin() -> Iterator[Any]:
    """A NonSistemas stand-in on 127.0.0.1, empty catalog, one API user."""
    from nonsistemas_standin import Standin

    with Standin.start(port=0, user=ERP_USER, password=ERP_PASSWORD, items=0) as server:
        yield server


@pytest.fixture(autouse=True)
def _default_language_after_each_test() -> Iterator[None]:
    """A request by an English-speaking user leaves English active in the thread
    (LocaleMiddleware does not reset it): the next test starts in the default."""
    yield
    translation.deactivate()
