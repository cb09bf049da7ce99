"""Issue #5, end to end: ERP credentials, the URL a store admin types, and one store
never touching another.

Everything runs in-process against the NonSistemas stand-in or tiny stdlib HTTP
servers on 127.0.0.1; DNS is faked by monkeypatching socket.getaddrinfo. The
deploy check runs `vxm check --deploy` in a subprocess with the environment of a
production server and of the demo.
"""

import io
import json
import logging
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.views.debug import ExceptionReporter
from httpcore._backends.sync import SyncStream

from catalog.models import CatalogImport, Item, ItemChange
from erp import actions, url_guard
from erp.errors import ErpError, ErrorCode
from erp.forms import ConnectionForm
from erp.models import AuditAction, AuditEvent, Connection, ErpKind, Run, RunStatus
from erp.nonsistemas import client as nonsistemas_client
from stores.models import Membership, Store
from tests.conftest import ERP_PASSWORD, ERP_USER, TEST_PASSWORD
from tests.erp.sync_helpers import connect, make_items, sync
from tests.erp.test_url_guard import HOSTILE
from tests.pki import Pki, certificate

BASE_DIR = Path(__file__).resolve().parent.parent
HTMX = {"HX-Request": "true"}
IMMEDIATE = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
PUBLIC_V4 = "93.184.216.34"
# What Django's SafeExceptionReporterFilter puts in place of a hidden value.
CLEANSED = "********************"


# ---- helpers ---------------------------------------------------------------------------


def body(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def store_urls() -> list[tuple[str, tuple[str, ...]]]:
    """(namespaced name, parameter names) of every URL of the catalog and erp apps."""
    found = []
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace in ("catalog", "erp"):
            prefix = tuple(entry.pattern.regex.groupindex)
            for sub in entry.url_patterns:
                assert isinstance(sub, URLPattern)
                found.append(
                    (f"{entry.namespace}:{sub.name}", prefix + tuple(sub.pattern.regex.groupindex))
                )
    assert {name.split(":")[0] for name, _ in found} == {"catalog", "erp"}
    return found


def build_url(name: str, params: tuple[str, ...], *, slug: str, item: Item, run: Run) -> str:
    values: dict[str, Any] = {
        "store_slug": slug,
        "pk": item.pk,
        "run_id": run.pk,
        "kind": "nonsistemas",
    }
    unknown = set(params) - set(values)
    assert not unknown, f"{name} has a URL parameter this test does not know: {unknown}"
    return reverse(name, kwargs={p: values[p] for p in params})


def post_data() -> dict[str, Any]:
    """One POST body that every form of the store would accept (or at least read)."""
    return {
        "url": "http://127.0.0.1:9/",
        "username": "intruso",
        "password": "otra",
        "stock": "999",
        "wholesale_price": "1,00",
        "seen_stock": "0",
        "seen_price": "0.00",
        "full": "on",
        "file": SimpleUploadedFile("c.csv", b"sku,stock\nSKU-1,999\n", "text/csv"),
    }


def connect_to(store: Store, url: str) -> Connection:
    """A connection saved as is, without the settings form's checks."""
    connection = Connection(store=store, kind=ErpKind.NONSISTEMAS, url=url, username=ERP_USER)
    connection.set_password(ERP_PASSWORD)
    connection.save()
    return connection


def tokens_of(standin: Any) -> list[str]:
    """Every Bearer token the stand-in has handed out."""
    return list(standin._instance._tokens)


def formatted(record: logging.LogRecord) -> str:
    """A log record as a handler would write it, traceback included."""
    return logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)


def product_records(caplog: Any) -> list[logging.LogRecord]:
    # The stand-in runs in this process too; it is the ERP, not the product.
    return [r for r in caplog.records if not r.name.startswith("nonsistemas_standin")]


class FakeDNS:
    """socket.getaddrinfo answering from a table; `default` for any other name."""

    def __init__(self, table: dict[str, list[str]], default: list[str] | None = None) -> None:
        self.table = table
        self.default = default
        self.calls: list[str] = []

    def __call__(self, host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        answer = self.table.get(host, self.default)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answer
        ]


def fake_dns(
    monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]], default: list[str] | None = None
) -> FakeDNS:
    url_guard._own_addresses()  # this machine's addresses, read with the real resolver first
    fake = FakeDNS(table, default)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every socket.connect() made while the test runs."""
    attempts: list[tuple[str, int]] = []

    class RecordingSocket(socket.socket):
        def connect(self, address: Any) -> None:
            attempts.append((address[0], address[1]))
            super().connect(address)

    monkeypatch.setattr(socket, "socket", RecordingSocket)
    return attempts


@dataclass
class World:
    """Two stores, each with items, a connection to the stand-in and a finished run."""

    ours: Store
    theirs: Store
    our_item: Item
    their_item: Item
    our_run: Run
    their_run: Run


@pytest.fixture
def world(store: Store, other_store: Store, admin_user: Any, standin: Any) -> World:
    make_items(store, [("SKU-1", 1, "10.00"), ("SKU-2", 2, "20.00")])
    make_items(other_store, [("SKU-1", 5, "50.00")])
    standin.load(
        [
            {"codigo": "SKU-1", "stock": "7", "precio_mayorista": "12.50"},
            {"codigo": "SKU-2", "stock": "3", "precio_mayorista": None},
            {"codigo": "NOPE-9", "stock": "1", "precio_mayorista": "1.00"},
        ]
    )
    connect(store, standin)
    connect(other_store, standin)
    our_run, their_run = sync(store), sync(other_store)
    assert our_run.status != RunStatus.FAILED and their_run.status != RunStatus.FAILED
    return World(
        ours=store,
        theirs=other_store,
        our_item=Item.objects.get(store=store, sku="SKU-1"),
        their_item=Item.objects.get(store=other_store),
        our_run=our_run,
        their_run=their_run,
    )


def state_of(store: Store) -> dict[str, Any]:
    """Everything a request could change about a store."""
    connection = Connection.objects.filter(store=store).values().first()
    return {
        "items": list(
            Item.objects.filter(store=store).values_list("sku", "stock", "wholesale_price")
        ),
        "changes": ItemChange.objects.filter(item__store=store).count(),
        "connection": connection,
        "runs": list(Run.objects.filter(store=store).values_list("id", "status")),
        "audit": AuditEvent.objects.filter(store=store).count(),
    }


# ---- never shown, never logged ------------------------------------------------------------


def test_no_response_log_or_record_holds_the_password_or_the_token(
    world, admin_client, standin, settings, caplog, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE
    caplog.set_level(logging.DEBUG)
    ours = world.ours
    bodies: list[tuple[str, bytes]] = []

    def keep(label: str, response: Any) -> None:
        assert response.status_code < 500, label
        bodies.append((label, body(response)))

    # Every POST form, as an admin uses them.
    keep("verify", admin_client.post(reverse("erp:verify", args=[ours.slug]), follow=True))
    with django_capture_on_commit_callbacks(execute=True):
        keep("update", admin_client.post(reverse("erp:update", args=[ours.slug]), follow=True))
    settings_url = reverse("erp:settings", args=[ours.slug, "nonsistemas"])
    keep(
        "settings, invalid",
        admin_client.post(
            settings_url, {"url": "nota url", "username": ERP_USER, "password": ERP_PASSWORD}
        ),
    )
    connection = Connection.objects.get(store=ours)
    keep(
        "settings, saved",
        admin_client.post(
            settings_url, {"url": connection.url, "username": ERP_USER, "password": ""}, follow=True
        ),
    )
    item_url = reverse("catalog:item", args=[ours.slug, world.our_item.pk])
    keep(
        "item edit",
        admin_client.post(item_url, {"stock": "3", "wholesale_price": "11,00"}, follow=True),
    )
    runs = list(Run.objects.filter(store=ours))
    assert len(runs) == 2 and all(not r.is_active for r in runs)

    # Every page, download and API of the store, for each of its runs.
    for name, params in store_urls():
        for run in runs:
            url = build_url(name, params, slug=ours.slug, item=world.our_item, run=run)
            keep(url, admin_client.get(url))
            keep(f"{url} (htmx)", admin_client.get(url, headers=HTMX))
    for query in ("format=csv", "format=json"):
        keep(query, admin_client.get(reverse("catalog:export", args=[ours.slug]) + "?" + query))
    keep(
        "issues",
        admin_client.get(
            reverse("erp:run_issues_csv", args=[ours.slug, runs[0].pk]) + "?kind=unmatched"
        ),
    )
    keep("search", admin_client.get(reverse("catalog:list", args=[ours.slug]) + "?q=SKU"))

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    bodies.append(("database dump", dump.getvalue().encode()))
    bodies += [(f"log {r.name}", formatted(r).encode()) for r in product_records(caplog)]

    tokens = tokens_of(standin)
    assert len(tokens) >= 3  # verify, and one login per run
    leaks = [
        (label, secret)
        for label, content in bodies
        for secret in [ERP_PASSWORD, *tokens]
        if secret.encode() in content
    ]
    # Nor, in any response, the stored ciphertext or the key that opens it.
    leaks += [
        (label, "ciphertext or key")
        for label, content in bodies
        if not label.startswith(("database", "log"))
        for secret in (connection.password_encrypted, settings.VXM_ENCRYPTION_KEYS[0])
        if secret.encode() in content
    ]
    assert not leaks
    assert len(bodies) > 40


def crash_when_sending(monkeypatch: pytest.MonkeyPatch, needle: bytes) -> None:
    """The socket write that carries `needle` raises: a crash deep in the HTTP stack,
    after the request (login body, Authorization header) was built. The frame that
    raises holds the whole request in its `buffer` local."""
    original = SyncStream.write

    def write(self: SyncStream, buffer: bytes, timeout: float | None = None) -> None:
        if needle in buffer:
            raise RuntimeError("the network stack broke")
        original(self, buffer, timeout)

    monkeypatch.setattr(SyncStream, "write", write)


def assert_reports_hide(record: logging.LogRecord, secrets_: list[str]) -> None:
    assert record.exc_info is not None
    exc_type, exc_value, tb = record.exc_info
    report = ExceptionReporter(None, exc_type, exc_value, tb, is_email=True)
    html, text = report.get_traceback_html(), report.get_traceback_text()
    # The crash is reported, down to the frame that raised, with its variables hidden.
    assert "the network stack broke" in text
    assert "in write" in text and "buffer" in html and CLEANSED in html
    for secret in secrets_:
        assert secret not in html
        assert secret not in text
        assert secret not in formatted(record)


def test_a_crash_while_logging_in_hides_the_password_in_logs_and_error_reports(
    admin_client, store, standin, monkeypatch, caplog
):
    connect(store, standin)
    crash_when_sending(monkeypatch, ERP_PASSWORD.encode())  # the login body
    with caplog.at_level(logging.DEBUG):
        response = admin_client.post(reverse("erp:verify", args=[store.slug]), follow=True)
    assert "error interno" in response.content.decode()
    assert ERP_PASSWORD not in response.content.decode()
    [record] = [r for r in product_records(caplog) if r.exc_info]
    assert record.name == "erp.actions"
    assert_reports_hide(record, [ERP_PASSWORD])
    for r in product_records(caplog):
        assert ERP_PASSWORD not in formatted(r)


def test_a_crash_after_the_authorization_header_hides_the_token(
    store, standin, monkeypatch, caplog
):
    connect(store, standin)
    crash_when_sending(monkeypatch, b"Bearer ")  # the first request after logging in
    with caplog.at_level(logging.DEBUG):
        run = sync(store)
    assert run.status == RunStatus.FAILED and run.error_code == ErrorCode.INTERNAL
    tokens = tokens_of(standin)
    assert tokens  # the login went through; the token was in the failing request
    [record] = [r for r in product_records(caplog) if r.exc_info]
    assert record.name == "erp.engine"
    assert_reports_hide(record, [ERP_PASSWORD, *tokens])
    for r in product_records(caplog):
        assert all(secret not in formatted(r) for secret in [ERP_PASSWORD, *tokens])
    assert all(t not in run.error_message for t in tokens)


def test_a_crash_while_opening_the_connection_hides_the_password(
    store, standin, monkeypatch, caplog
):
    """`registry.source_for` holds the decrypted password while it checks the URL and
    builds the source: a failure there is reported without it."""
    connect(store, standin)

    def explode(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("the URL rules broke")

    monkeypatch.setattr(url_guard, "check_url", explode)
    with caplog.at_level(logging.DEBUG):
        run = sync(store)
    assert run.status == RunStatus.FAILED and run.error_code == ErrorCode.INTERNAL
    [record] = [r for r in product_records(caplog) if r.exc_info]
    assert record.exc_info is not None
    exc_type, exc_value, tb = record.exc_info
    report = ExceptionReporter(None, exc_type, exc_value, tb, is_email=True)
    html, text = report.get_traceback_html(), report.get_traceback_text()
    assert "in source_for" in text and "the URL rules broke" in text
    assert ERP_PASSWORD not in html and ERP_PASSWORD not in text


def test_a_crash_while_building_the_client_hides_the_password(store, standin, monkeypatch, caplog):
    # The client's constructor has the password as an argument; the run's feed is
    # opened from an undecorated generator, so `_new_client` is what hides it.
    connect(store, standin)

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("httpx broke")

    monkeypatch.setattr(nonsistemas_client.httpx, "Client", explode)
    with caplog.at_level(logging.DEBUG):
        run = sync(store)
    assert run.status == RunStatus.FAILED and run.error_code == ErrorCode.INTERNAL
    [record] = [r for r in product_records(caplog) if r.exc_info]
    assert record.exc_info is not None
    exc_type, exc_value, tb = record.exc_info
    report = ExceptionReporter(None, exc_type, exc_value, tb, is_email=True)
    html, text = report.get_traceback_html(), report.get_traceback_text()
    assert "in __init__" in text and "httpx broke" in text
    assert ERP_PASSWORD not in html and ERP_PASSWORD not in text


def test_a_crash_while_checking_the_settings_form_hides_the_password(
    store, standin, monkeypatch, pki
):
    connection = connect(store, standin)
    connection.ca_cert_pem = pki.ca_pem().decode()
    connection.save()

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the form broke")

    # Uploading a CA and ticking "remove" is an error the form's clean() reports
    # while it holds the typed password.
    monkeypatch.setattr(ConnectionForm, "add_error", explode)
    form = ConnectionForm(
        {
            "url": standin.url,
            "username": ERP_USER,
            "password": ERP_PASSWORD,
            "remove_ca_cert": "on",
        },
        {"ca_cert": upload(pki.ca_pem())},
        kind="nonsistemas",
        connection=connection,
    )
    with pytest.raises(RuntimeError):
        try:
            form.is_valid()
        except RuntimeError:
            etype, value, tb = sys.exc_info()
            html = ExceptionReporter(None, etype, value, tb).get_traceback_html()
            raise
    assert "in clean" in html or "clean" in html
    assert ERP_PASSWORD not in html


# ---- stores are walled off -------------------------------------------------------------


def test_a_user_of_one_store_gets_404_for_every_url_of_another(world, admin_client):
    theirs_before = state_of(world.theirs)
    checked = 0
    for name, params in store_urls():
        # The other store's URL, with its own ids...
        urls = [
            build_url(
                name, params, slug=world.theirs.slug, item=world.their_item, run=world.their_run
            )
        ]
        for url in urls:
            assert admin_client.get(url, headers=HTMX).status_code == 404, f"GET {url}"
            assert admin_client.post(url, post_data(), headers=HTMX).status_code == 404, (
                f"POST {url}"
            )
            checked += 1
        # ...and the other store's ids under our own store: answered exactly like ids
        # that exist nowhere (404, or 405 for a POST to a page that only shows), so
        # ids cannot be probed.
        if {"pk", "run_id"} & set(params):
            theirs = build_url(
                name, params, slug=world.ours.slug, item=world.their_item, run=world.their_run
            )
            nowhere = build_url(
                name, params, slug=world.ours.slug, item=Item(pk=10**9), run=Run(pk=10**9)
            )
            for method in ("get", "post"):
                got = getattr(admin_client, method)(theirs, post_data(), headers=HTMX)
                missing = getattr(admin_client, method)(nowhere, post_data(), headers=HTMX)
                assert got.status_code in (404, 405), f"{method} {theirs}"
                assert got.status_code == missing.status_code, f"{method} {theirs}"
                checked += 1
    assert checked >= 15
    assert state_of(world.theirs) == theirs_before


def test_a_member_of_neither_store_and_anonymous_users_get_nothing(world, client):
    outsider = get_user_model().objects.create_user("x@x.test", "x@x.test", TEST_PASSWORD)
    other = Client()
    other.force_login(outsider)
    for name, params in store_urls():
        url = build_url(name, params, slug=world.ours.slug, item=world.our_item, run=world.our_run)
        assert other.get(url, headers=HTMX).status_code == 404, url
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_another_stores_import_answers_404(world, admin_client):
    # Import jobs have their own ids, which the every-URL walk above does not hold.
    ours = CatalogImport.objects.create(store=world.ours, actor="a", filename="nuestro.csv")
    theirs = CatalogImport.objects.create(store=world.theirs, actor="b", filename="ajeno.csv")

    def page(slug: str, pk: int) -> Any:
        return admin_client.get(reverse("catalog:import_detail", args=[slug, pk]))

    assert page(world.ours.slug, ours.pk).status_code == 200
    assert page(world.ours.slug, theirs.pk).status_code == 404
    assert page(world.theirs.slug, theirs.pk).status_code == 404
    assert b"ajeno.csv" not in body(page(world.ours.slug, theirs.pk))


# ---- CSRF --------------------------------------------------------------------------------


def test_every_post_without_the_csrf_token_is_refused(world, admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    before = state_of(world.ours)
    for name, params in store_urls():
        url = build_url(name, params, slug=world.ours.slug, item=world.our_item, run=world.our_run)
        assert client.post(url, post_data(), headers=HTMX).status_code == 403, url
    assert client.post(reverse("logout")).status_code == 403
    anonymous = Client(enforce_csrf_checks=True)
    response = anonymous.post(
        reverse("login"), {"username": "admin@sur.test", "password": TEST_PASSWORD}
    )
    assert response.status_code == 403
    assert state_of(world.ours) == before
    assert client.get(reverse("erp:integrations", args=[world.ours.slug])).status_code == 200


def test_every_form_that_posts_carries_the_csrf_token(world, admin_client, client):
    pages = [
        build_url(name, params, slug=world.ours.slug, item=world.our_item, run=world.our_run)
        for name, params in store_urls()
    ]
    forms = []
    for url in pages:
        forms += re.findall(
            r"<form\b[^>]*method=\"post\".*?</form>",
            body(admin_client.get(url)).decode(errors="replace"),
            re.S | re.I,
        )
    forms += re.findall(
        r"<form\b[^>]*method=\"post\".*?</form>",
        client.get(reverse("login")).content.decode(),
        re.S | re.I,
    )
    # Logout (every page), verify, update, the settings, an item's edit, import, login.
    assert len(forms) >= 7
    for form in forms:
        assert 'name="csrfmiddlewaretoken"' in form, form[:200]


def test_logging_out_takes_a_post(admin_client, store):
    # A GET (a link or an <img> on another site) must not log anyone out.
    assert admin_client.get(reverse("logout")).status_code == 405
    assert admin_client.get(reverse("catalog:list", args=[store.slug])).status_code == 200
    assert admin_client.post(reverse("logout")).status_code == 302
    assert admin_client.get(reverse("catalog:list", args=[store.slug])).status_code == 302


# ---- the URL is a server-side request ---------------------------------------------------

# Names that look harmless and resolve to internal addresses.
RESOLVING = {
    "erp-metadata.example.com": ["169.254.169.254"],
    "erp-private.example.com": ["10.0.0.5"],
    "erp-loopback.example.com": ["127.0.0.1"],
    "erp-mixed.example.com": [PUBLIC_V4, "10.0.0.5"],  # one public, one private record
    "erp-mapped.example.com": ["::ffff:127.0.0.1"],
    "erp-nat64.example.com": ["64:ff9b::a9fe:a9fe"],
    "erp-shared.example.com": ["100.64.0.1"],
}
ALL_HOSTILE = [url for url, _ in HOSTILE] + [f"https://{name}/" for name in RESOLVING]


def test_the_hostile_list_is_long_and_varied():
    assert len(ALL_HOSTILE) >= 30
    joined = " ".join(ALL_HOSTILE)
    for needle in (
        "2130706433",
        "0177.",
        "0x7f",
        "[::ffff:127.0.0.1]",
        "@",
        ":22/",
        ":5432/",
        ":6379/",
        "file:",
        "gopher:",
        "169.254.169.254",
    ):
        assert needle in joined, needle


def test_hostile_urls_are_refused_when_saving_the_form(admin_client, store, settings, monkeypatch):
    settings.VXM_ALLOW_LOCAL_ERP = False  # as in production
    fake_dns(monkeypatch, RESOLVING)
    settings_url = reverse("erp:settings", args=[store.slug, "nonsistemas"])
    accepted = []
    for url in ALL_HOSTILE:
        response = admin_client.post(
            settings_url, {"url": url, "username": ERP_USER, "password": ERP_PASSWORD}
        )
        errors = response.context["form"].errors if response.status_code == 200 else {}
        if "url" not in errors or not all(errors["url"]):
            accepted.append(url)
    assert not accepted
    assert not Connection.objects.exists()


def test_the_form_does_not_say_which_internal_address_a_name_has(
    admin_client, store, settings, monkeypatch
):
    settings.VXM_ALLOW_LOCAL_ERP = False
    fake_dns(monkeypatch, RESOLVING)
    response = admin_client.post(
        reverse("erp:settings", args=[store.slug, "nonsistemas"]),
        {"url": "https://erp-private.example.com/", "username": ERP_USER, "password": ERP_PASSWORD},
    )
    [error] = response.context["form"].errors["url"]
    assert "erp-private.example.com" in error and "10.0.0.5" not in error


def test_hostile_urls_are_refused_at_connect_time(store, settings, monkeypatch, connects):
    """A stored URL that somehow skipped the form (an older rule, a database edit):
    the connection itself refuses it, and nothing is ever connected to."""
    settings.VXM_ALLOW_LOCAL_ERP = False
    dns = fake_dns(monkeypatch, RESOLVING, default=["10.0.0.5"])
    connection = connect_to(store, "https://placeholder.example.com/")
    outcomes = {}
    from django.db import connection as db

    for url in ALL_HOSTILE:
        if "\x00" in url and db.vendor == "postgresql":
            continue  # PostgreSQL cannot store it at all, so it can never be connected to
        Connection.objects.filter(pk=connection.pk).update(url=url)
        # A fresh store each time: it caches its connection.
        outcome = actions.verify_connection(Store.objects.get(pk=store.pk))
        outcomes[url] = (outcome.ok, outcome.code)
    wrong = {
        url: result
        for url, result in outcomes.items()
        if result[0] or result[1] not in (ErrorCode.URL_NOT_ALLOWED, ErrorCode.MALFORMED_URL)
    }
    assert not wrong
    assert connects == []
    assert set(RESOLVING) <= set(dns.calls)  # the names were looked up, then refused


@pytest.mark.parametrize("name", sorted(RESOLVING))
def test_a_benign_name_resolving_inside_is_refused_at_connect_time(
    store, settings, monkeypatch, connects, name
):
    settings.VXM_ALLOW_LOCAL_ERP = False
    fake_dns(monkeypatch, RESOLVING)
    connection = connect_to(store, f"https://{name}/")
    outcome = actions.verify_connection(store)
    assert not outcome.ok and outcome.code == ErrorCode.URL_NOT_ALLOWED
    # The internal address stays in our logs, not in what the admin reads.
    assert all(address not in outcome.message for address in RESOLVING[name])
    run = sync(store)
    assert run.status == RunStatus.FAILED and run.error_code == ErrorCode.URL_NOT_ALLOWED
    assert connects == []
    connection.refresh_from_db()
    assert connection.watermark is None


def test_a_stored_url_is_checked_again_with_the_forms_message(
    store, settings, monkeypatch, connects
):
    """A row saved under older rules (here: port 22 before VXM_ERP_ALLOWED_PORTS was
    narrowed) is refused before any lookup, with what the form would say."""
    settings.VXM_ALLOW_LOCAL_ERP = False
    dns = fake_dns(monkeypatch, {}, default=[PUBLIC_V4])
    connect_to(store, "https://erp.example.com:22/")
    outcome = actions.verify_connection(store)
    with pytest.raises(ErpError) as form_says:
        url_guard.check_url("https://erp.example.com:22/", allow_local=False)
    assert not outcome.ok and outcome.code == ErrorCode.URL_NOT_ALLOWED
    assert form_says.value.message in outcome.message
    assert dns.calls == [] and connects == []


class _Redirector(BaseHTTPRequestHandler):
    """Answers everything with a redirect to the cloud metadata address."""

    server: "_Server"

    def _redirect(self) -> None:
        self.server.seen.append((self.command, self.path))
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/iam/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _redirect

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[tuple[str, str]]


@contextmanager
def serve(
    handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), handler)
    server.seen = []
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    # Listening already: requests can start at once; the thread only answers them.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_redirect_to_the_metadata_address_is_reported_not_followed(store, settings, connects):
    settings.VXM_ALLOW_LOCAL_ERP = True  # the redirecting server is on 127.0.0.1
    with serve(_Redirector) as server:
        port = server.server_address[1]
        connect_to(store, f"http://127.0.0.1:{port}/")
        outcome = actions.verify_connection(store)
        run = sync(store)
    assert not outcome.ok and outcome.code == ErrorCode.NOT_ERP
    assert "redirige a" in outcome.message and "169.254.169.254" in outcome.message
    assert run.status == RunStatus.FAILED and run.error_code == ErrorCode.NOT_ERP
    # One request each (the version, the login), none of them followed.
    assert server.seen == [("GET", "/api/version"), ("POST", "/api/login")]
    assert {host for host, _ in connects} == {"127.0.0.1"}


# ---- a store's private certificate authority --------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


class _NonSistemasOverTls(BaseHTTPRequestHandler):
    """Just enough NonSistemas for a verification: the version and a login."""

    server: _Server

    def _json(self, data: dict[str, Any]) -> None:
        self.server.seen.append((self.command, self.path))
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._json({"producto": "NonSistemas", "version": "4.3.1"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._json({"token": secrets.token_hex(16), "expira_en": 1800})

    def log_message(self, format: str, *args: Any) -> None:
        pass


def upload(pem: bytes, name: str = "ca.pem") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, pem, "application/x-pem-file")


def test_a_private_ca_is_uploaded_used_shown_and_removed(
    admin_client, store, settings, monkeypatch, pki
):
    settings.VXM_ALLOW_LOCAL_ERP = True  # the ERP is on 127.0.0.1, reached as erp.test
    fake_dns(monkeypatch, {"erp.test": ["127.0.0.1"]})
    settings_url = reverse("erp:settings", args=[store.slug, "nonsistemas"])
    verify_url = reverse("erp:verify", args=[store.slug])
    with serve(_NonSistemasOverTls, tls=pki.server_context("erp.test")) as server:
        url = f"https://erp.test:{server.server_address[1]}/"
        # Without the store's CA the certificate does not verify.
        response = admin_client.post(
            settings_url, {"url": url, "username": ERP_USER, "password": ERP_PASSWORD}
        )
        assert response.status_code == 302
        assert actions.verify_connection(store).code == ErrorCode.TLS
        assert server.seen == []

        # With it, the same server verifies, by name.
        response = admin_client.post(
            settings_url,
            {
                "url": url,
                "username": ERP_USER,
                "password": ERP_PASSWORD,
                "ca_cert": upload(pki.ca_pem()),
            },
        )
        assert response.status_code == 302
        connection = Connection.objects.get(store=store)
        assert connection.ca_cert_pem == pki.ca_pem().decode()
        response = admin_client.post(verify_url, follow=True)
        assert "La conexión funciona: NonSistemas 4.3.1." in response.content.decode()
        assert server.seen == [("GET", "/api/version"), ("POST", "/api/login")]

        # The settings page says which CA is trusted and until when.
        page = admin_client.get(settings_url).content.decode()
        assert "CN=Mayorista Sur CA interna" in page
        assert f"{pki.ca.not_valid_after_utc.astimezone(store.tz):%d/%m/%Y}" in page
        audit = AuditEvent.objects.filter(store=store, action=AuditAction.CONFIGURED).values_list(
            "detail", flat=True
        )
        assert any("Certificado de CA nuevo: CN=Mayorista Sur CA interna" in d for d in audit)

        # Removing it needs no password, and verification fails again: never switched off.
        response = admin_client.post(
            settings_url, {"url": url, "username": ERP_USER, "password": "", "remove_ca_cert": "on"}
        )
        assert response.status_code == 302
        assert Connection.objects.get(store=store).ca_cert_pem == ""
        assert actions.verify_connection(store).code == ErrorCode.TLS
        assert AuditEvent.objects.filter(detail="Certificado de CA quitado").exists()
    assert "CN=Mayorista Sur CA interna" not in admin_client.get(settings_url).content.decode()


def test_a_new_ca_needs_the_password_typed_again(admin_client, store, standin, pki):
    connect(store, standin)
    settings_url = reverse("erp:settings", args=[store.slug, "nonsistemas"])
    data = {"url": standin.url, "username": ERP_USER, "password": ""}
    response = admin_client.post(settings_url, {**data, "ca_cert": upload(pki.ca_pem())})
    [error] = response.context["form"].errors["password"]
    assert "certificado de CA nuevo" in error
    assert Connection.objects.get(store=store).ca_cert_pem == ""
    response = admin_client.post(
        settings_url, {**data, "password": ERP_PASSWORD, "ca_cert": upload(pki.ca_pem())}
    )
    assert response.status_code == 302
    assert Connection.objects.get(store=store).ca_cert_pem


def test_the_command_line_sets_and_removes_the_ca_under_the_forms_rules(
    store, settings, monkeypatch, pki
):
    settings.VXM_ALLOW_LOCAL_ERP = True
    fake_dns(monkeypatch, {"erp.test": ["127.0.0.1"]})
    ca_file = pki.tmp / "ca-interna.pem"
    ca_file.write_bytes(pki.ca_pem())

    def configure(*more: str, password: str = "") -> None:
        monkeypatch.setenv("VXM_ERP_PASSWORD", password)
        call_command(
            "erp",
            "configure",
            store.slug,
            "nonsistemas",
            "--url",
            url,
            "--username",
            ERP_USER,
            *more,
            stdout=io.StringIO(),
        )

    def verify() -> actions.VerifyOutcome:
        return actions.verify_connection(Store.objects.get(pk=store.pk))

    with serve(_NonSistemasOverTls, tls=pki.server_context("erp.test")) as server:
        url = f"https://erp.test:{server.server_address[1]}/"
        configure(password=ERP_PASSWORD)
        assert verify().code == ErrorCode.TLS
        # A new CA, like a new server, needs the password again.
        with pytest.raises(CommandError, match="certificado de CA nuevo"):
            configure("--ca-cert", str(ca_file))
        configure("--ca-cert", str(ca_file), password=ERP_PASSWORD)
        assert verify().ok
        configure("--remove-ca-cert")
        assert verify().code == ErrorCode.TLS
    details = AuditEvent.objects.filter(store=store).values_list("detail", flat=True)
    assert any(
        d.startswith("Certificado de CA nuevo: CN=Mayorista Sur CA interna") for d in details
    )
    assert "Certificado de CA quitado" in details


def test_the_command_line_refuses_a_ca_file_it_cannot_use(store, standin, tmp_path):
    connect(store, standin)
    base = ["erp", "configure", store.slug, "nonsistemas", "--url", standin.url]
    base += ["--username", ERP_USER]
    with pytest.raises(CommandError, match="No se pudo leer"):
        call_command(*base, "--ca-cert", str(tmp_path / "no-existe.pem"))
    not_a_cert = tmp_path / "clave.pem"
    not_a_cert.write_text("hola")
    with pytest.raises(CommandError, match="Certificado de la CA"):
        call_command(*base, "--ca-cert", str(not_a_cert))
    assert Connection.objects.get(store=store).ca_cert_pem == ""


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def test_the_ca_upload_accepts_only_a_cacertificate(admin_client, store, standin, pki):
    settings_url = reverse("erp:settings", args=[store.slug, "nonsistemas"])
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate(
        "erp.test", leaf_key, issuer=pki.ca, issuer_key=pki.ca_key, ca=False, dns_name="erp.test"
    )
    expired_key = ec.generate_private_key(ec.SECP256R1())
    expired = certificate("CA vieja", expired_key, ca=True, days=-1)
    key_pem = pki.ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cases = {
        "unreadable": b"hola, esto no es un certificado",
        "not_ca": leaf.public_bytes(serialization.Encoding.PEM),
        "expired": expired.public_bytes(serialization.Encoding.PEM),
        "private_key": pki.ca_pem() + key_pem,
        "too_large": b"-----BEGIN CERTIFICATE-----\n" + b"A" * (70 * 1024),
    }
    for code, content in cases.items():
        response = admin_client.post(
            settings_url,
            {
                "url": standin.url,
                "username": ERP_USER,
                "password": ERP_PASSWORD,
                "ca_cert": upload(content),
            },
        )
        assert response.status_code == 200, code
        form = response.context["form"]
        assert [e.code for e in form.errors.as_data()["ca_cert"]] == [code]
        assert not Connection.objects.exists(), code

    # A DER file (.cer from Windows) is accepted and stored as PEM.
    response = admin_client.post(
        settings_url,
        {
            "url": standin.url,
            "username": ERP_USER,
            "password": ERP_PASSWORD,
            "ca_cert": upload(_der(pki.ca), "ca.cer"),
        },
    )
    assert response.status_code == 302
    assert Connection.objects.get().ca_cert_pem == pki.ca_pem().decode()


def test_without_the_password_no_caller_can_move_the_stored_one(store, standin, pki):
    """The settings form asks for the password again when the server or the CA
    changes; `actions.save_settings` (what the form and the CLI call) refuses it too,
    so no other caller can send the stored password somewhere new."""
    connect(store, standin)
    before = state_of(store)
    base = {"kind": "nonsistemas", "username": ERP_USER, "password": None}
    other_host = standin.url.replace("127.0.0.1", "localhost")
    other_port = re.sub(r":\d+", ":1", standin.url)
    for change in (
        {"url": other_host},
        {"url": other_port},
        {"url": standin.url.replace("http://", "https://")},
        {"url": standin.url, "ca_cert_pem": pki.ca_pem().decode()},
    ):
        with pytest.raises(ValueError, match="password"):
            actions.save_settings(store, **{**base, **change})
    assert state_of(store) == before
    # The same server keeps the stored password; with the password typed, both go.
    actions.save_settings(store, **{**base, "url": standin.url, "username": "otro"})
    actions.save_settings(
        store,
        **{
            **base,
            "url": other_host,
            "password": ERP_PASSWORD,
            "ca_cert_pem": pki.ca_pem().decode(),
        },
    )
    connection = Connection.objects.get(store=store)
    assert connection.url == other_host and connection.ca_cert_pem


# ---- rate limits ------------------------------------------------------------------------


# Login limits: tests/test_login.py.


def test_panel_buttons_are_limited_per_store_and_the_cli_is_not(
    store, other_store, admin_client, admin_user, standin
):
    standin.configure(login_limit_per_minute=None)  # the ERP's own limit is not under test
    connect(store, standin)
    connect(other_store, standin)
    Membership.objects.create(store=other_store, user=admin_user)
    for _ in range(4):
        admin_client.post(reverse("erp:verify", args=[store.slug]))
    response = admin_client.post(reverse("erp:verify", args=[store.slug]), follow=True)
    assert "Esperá un momento" in response.content.decode()
    # Another store's button still works.
    response = admin_client.post(reverse("erp:verify", args=[other_store.slug]), follow=True)
    assert "La conexión funciona" in response.content.decode()
    # The operators' command line is not limited.
    for _ in range(3):
        call_command("erp", "verify", store.slug, stdout=io.StringIO())
    assert AuditEvent.objects.filter(store=store, action=AuditAction.VERIFIED).count() == 7


# ---- `vxm check --deploy` -------------------------------------------------------------


def run_with_env(
    tmp_path: Path, command: list[str], env: dict[str, str], *, timeout: int, check: bool
) -> subprocess.CompletedProcess[str]:
    """`command` as a new process with only `env` for the product's settings (none of
    this test run's VXM_* variables), its var/ in `tmp_path`."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VXM_") and k != "DJANGO_SETTINGS_MODULE"
    }
    return subprocess.run(
        command,
        env={**clean, "VXM_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        timeout=timeout,
        check=check,
    )


def vxm_check(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vxm", "check", "--deploy", *args]
    return run_with_env(tmp_path, command, env, timeout=120, check=False)


def production_env() -> dict[str, str]:
    return {
        "VXM_SECRET_KEY": secrets.token_urlsafe(50),
        "VXM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "VXM_ALLOWED_HOSTS": "shop.example.com",
        "VXM_HTTPS": "1",
        # Without it emails to store admins are only printed (Django's mail.E001).
        "VXM_EMAIL_HOST": "smtp.example.com",
    }


def demo_env() -> dict[str, str]:
    # What scripts/demo exports.
    return {
        "VXM_SECRET_KEY": secrets.token_urlsafe(48),
        "VXM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "VXM_ALLOW_LOCAL_ERP": "1",
    }


# One key used as both SECRET_KEY and encryption key (erp.E005).
SHARED_KEY = Fernet.generate_key().decode()


def test_the_deploy_check_passes_with_production_settings(tmp_path):
    # Extra ERP ports, as an operator writes them, are a valid setting.
    result = vxm_check(tmp_path, **production_env(), VXM_ERP_ALLOWED_PORTS="443, 8443,9443")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_check_fails_with_the_demo_settings(tmp_path):
    result = vxm_check(tmp_path, **demo_env())
    assert result.returncode != 0
    assert "erp.E001" in result.stderr and "VXM_ALLOW_LOCAL_ERP" in result.stderr
    # Plain http: Django's own deploy warnings are there too.
    assert "security.W008" in result.stderr and "security.W012" in result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"VXM_ENCRYPTION_KEYS": ""}, "erp.E002"),
        ({"VXM_ENCRYPTION_KEYS": "not-a-key-XYZZY"}, "erp.E003"),
        ({"VXM_SECRET_KEY": ""}, "erp.E004"),  # unset: the development default
        ({"VXM_SECRET_KEY": SHARED_KEY, "VXM_ENCRYPTION_KEYS": SHARED_KEY}, "erp.E005"),
        ({"VXM_ERP_ALLOWED_PORTS": "443,https"}, "erp.E006"),
        ({"VXM_DEBUG": "1"}, "security.W018"),
        ({"VXM_HSTS_SECONDS": "0"}, "security.W004"),
    ],
)
def test_the_deploy_check_fails_for_each_unsafe_setting(tmp_path, change, expected):
    env = {**production_env(), **change}
    env = {k: v for k, v in env.items() if v}
    result = vxm_check(tmp_path, **env)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "XYZZY" not in result.stderr  # a broken key is not echoed


def test_an_operator_can_accept_a_deploy_warning_explicitly(tmp_path):
    # HSTS turned off on purpose: a warning, which fails `vxm check --deploy`
    # unless the operator lowers the fail level, as with Django's own command.
    env = {**production_env(), "VXM_HSTS_SECONDS": "0"}
    assert vxm_check(tmp_path, **env).returncode != 0
    result = vxm_check(tmp_path, "--fail-level", "ERROR", **env)
    assert result.returncode == 0 and "security.W004" in result.stderr


def settings_in(tmp_path: Path, **env: str) -> dict[str, Any]:
    names = [
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
    ]
    code = (
        "import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'vxm.settings'; "
        "from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    result = run_with_env(tmp_path, [sys.executable, "-c", code], env, timeout=60, check=True)
    return dict(json.loads(result.stdout))


def test_the_demo_keeps_plain_http_cookies_and_production_gets_secure_ones(tmp_path):
    demo = settings_in(tmp_path, **demo_env())
    assert demo == {
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_PROXY_SSL_HEADER": None,
    }
    production = settings_in(tmp_path, **production_env(), VXM_BEHIND_PROXY="1")
    assert production == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


# ---- Content-Security-Policy ------------------------------------------------------------


def test_pages_forbid_inline_scripts_and_styles_and_framing(admin_client, store):
    for url in (
        reverse("login"),
        reverse("catalog:list", args=[store.slug]),
        reverse("erp:integrations", args=[store.slug]),
    ):
        policy = admin_client.get(url).headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'", url
        assert directives["style-src"] == "'self'", url
        assert directives["frame-ancestors"] == "'none'", url
        assert "unsafe" not in policy


def test_no_template_carries_inline_script_style_or_event_handler():
    # The policy would block them in the browser: a page would silently lose them.
    root = Path(__file__).resolve().parent.parent
    inline = re.compile(r"\sstyle=|<style|<script(?![^>]*\ssrc=)|\son[a-z]+=|javascript:", re.I)
    offenders = [
        f"{template.relative_to(root)}: {match.group(0).strip()}"
        for template in root.glob("*/templates/**/*.html")
        for match in inline.finditer(template.read_text())
    ]
    assert not offenders
    assert len(list(root.glob("*/templates/**/*.html"))) > 10


def test_every_policy_directive_and_browser_header_is_sent(admin_client, store):
    response = admin_client.get(reverse("catalog:list", args=[store.slug]))
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
