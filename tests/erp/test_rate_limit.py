"""The panel's Verify and Update limits hold under simultaneous clicks.

Each click is a real request to the real view, from its own thread with its own
database connection; what is counted is what the NonSistemas stand-in received.
The ERP call of every click that got through is held until every click has been
decided (let through or refused), so a limit that counted only finished calls
would let all of them through: the test does not depend on timing.
"""

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from erp import actions, registry
from erp.models import AuditAction, AuditEvent, Run
from stores.models import Store
from tests.erp.sync_helpers import connect

pytestmark = pytest.mark.django_db(transaction=True)

CLICKS = 8
IMMEDIATE = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
# Generous: reached only if the code under test deadlocks.
DEADLOCK_GUARD_SECONDS = 60


class Gate:
    """Holds each ERP call until all `clicks` clicks were decided."""

    def __init__(self, clicks: int) -> None:
        self.clicks = clicks
        self.decided = 0
        self.condition = threading.Condition()

    def decide(self) -> None:
        with self.condition:
            self.decided += 1
            self.condition.notify_all()

    def hold_until_all_decided(self) -> None:
        with self.condition:
            self.decided += 1
            self.condition.notify_all()
            if not self.condition.wait_for(
                lambda: self.decided >= self.clicks, timeout=DEADLOCK_GUARD_SECONDS
            ):
                raise AssertionError("the clicks never all got decided: a deadlock")


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    gate = Gate(CLICKS)
    real_source_for = registry.source_for
    held: set[int] = set()

    def gated_source_for(connection: Any) -> Any:
        # A click that reached the ERP counts as decided once, the moment it gets here.
        if threading.get_ident() not in held:
            held.add(threading.get_ident())
            gate.hold_until_all_decided()
        return real_source_for(connection)

    monkeypatch.setattr(registry, "source_for", gated_source_for)
    return gate


def click_all_at_once(
    clients: list[Client], path: str, gate: Gate, data: dict[str, str] | None = None
) -> list[str]:
    """POST `path` from every client at the same moment; the messages each one got."""
    barrier = threading.Barrier(len(clients))
    shown: list[str] = []
    errors: list[BaseException] = []

    def click(client: Client) -> None:
        try:
            barrier.wait()
            response = client.post(path, data or {}, follow=True)
            shown.extend(str(m) for m in response.context["messages"])
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            gate.decide()
            db_connection.close()

    threads = [threading.Thread(target=click, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return shown


def logins(standin: Any) -> int:
    return sum(1 for r in standin.requests() if r["path"].endswith("/api/login"))


@pytest.fixture
def clients(admin_user: Any) -> list[Client]:
    result = []
    for _ in range(CLICKS):
        client = Client()
        client.force_login(admin_user)
        result.append(client)
    return result


@pytest.fixture
def connected_store(store: Store, standin: Any) -> Iterator[Store]:
    connect(store, standin)
    standin.clear_requests()
    yield store


def test_simultaneous_verify_clicks_log_in_at_most_the_limit(
    connected_store: Store, standin: Any, clients: list[Client], gate: Gate
) -> None:
    limit, _ = actions.PANEL_LIMITS[AuditAction.VERIFIED]
    shown = click_all_at_once(clients, reverse("erp:verify", args=[connected_store.slug]), gate)

    assert logins(standin) == limit
    assert sum("La conexión funciona" in m for m in shown) == limit
    refused = [m for m in shown if "Esperá un momento" in m]
    assert len(refused) == CLICKS - limit
    # The admin is told how long to wait: the slot frees a minute after the first click.
    assert all("segundos) y probá de nuevo" in m or "(1 minuto)" in m for m in refused), refused
    events = AuditEvent.objects.filter(store=connected_store, action=AuditAction.VERIFIED)
    assert [e.detail.split(":")[0] for e in events] == ["Correcta"] * limit


def test_verify_clicks_after_the_limit_still_log_in_nothing(
    connected_store: Store, standin: Any, admin_client: Client
) -> None:
    limit, window = actions.PANEL_LIMITS[AuditAction.VERIFIED]
    for _ in range(limit):
        admin_client.post(reverse("erp:verify", args=[connected_store.slug]), follow=True)
    assert logins(standin) == limit
    response = admin_client.post(reverse("erp:verify", args=[connected_store.slug]), follow=True)
    [message] = [str(m) for m in response.context["messages"]]
    assert "Esperá un momento" in message and "probá de nuevo" in message
    assert logins(standin) == limit
    # Once the oldest click is a window old, one more may go.
    AuditEvent.objects.filter(store=connected_store).update(
        at=timezone.now() - window - timedelta(seconds=1)
    )
    response = admin_client.post(reverse("erp:verify", args=[connected_store.slug]), follow=True)
    [message] = [str(m) for m in response.context["messages"]]
    assert "La conexión funciona" in message
    assert logins(standin) == limit + 1


def test_simultaneous_update_clicks_never_exceed_the_limit(
    connected_store: Store,
    standin: Any,
    clients: list[Client],
    admin_user: Any,
    gate: Gate,
    settings: Any,
) -> None:
    settings.TASKS = IMMEDIATE  # each run logs in to the ERP inside its request
    limit, _ = actions.PANEL_LIMITS[AuditAction.UPDATE_REQUESTED]
    # All but one of the updates allowed in the window were already asked for.
    for _ in range(limit - 1):
        AuditEvent.objects.create(
            store=connected_store, user=admin_user, action=AuditAction.UPDATE_REQUESTED
        )
    shown = click_all_at_once(clients, reverse("erp:update", args=[connected_store.slug]), gate)

    assert Run.objects.filter(store=connected_store).count() == 1
    assert logins(standin) == 1
    assert sum("pedida" in m for m in shown) == 1
    # The others were refused: by the limit, or because that one was still running.
    assert all(
        "Esperá un rato" in m or "Ya hay una actualización" in m for m in shown if "pedida" not in m
    )


def test_the_update_limit_tells_how_long_to_wait(
    connected_store: Store, standin: Any, admin_client: Client, admin_user: Any
) -> None:
    limit, _ = actions.PANEL_LIMITS[AuditAction.UPDATE_REQUESTED]
    for minutes_ago in range(limit):
        AuditEvent.objects.create(
            store=connected_store,
            user=admin_user,
            action=AuditAction.UPDATE_REQUESTED,
            at=timezone.now() - timedelta(minutes=minutes_ago, seconds=30),
        )
    response = admin_client.post(reverse("erp:update", args=[connected_store.slug]), follow=True)
    [message] = [str(m) for m in response.context["messages"]]
    # The oldest of the six was 5½ minutes ago: it leaves the 10-minute window in 4½.
    assert "Esperá un rato (5 minutos) y probá de nuevo" in message, message
    assert not Run.objects.exists()
    assert logins(standin) == 0
