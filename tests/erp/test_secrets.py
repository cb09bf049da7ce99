"""ERP passwords at rest: encryption, key rotation, unreadable rows, error reports.

The keys come from settings.VXM_ENCRYPTION_KEYS (the first encrypts, all decrypt);
tests/conftest.py gives every test a fresh key.
"""

import io
import sys
from typing import Any

import cryptography.fernet
import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter

from erp import actions, secrets
from erp.errors import ErrorCode
from erp.models import Connection, RunStatus
from stores.models import Membership, Store
from tests.conftest import ERP_PASSWORD, TEST_PASSWORD
from tests.erp.sync_helpers import connect, sync


def reencrypt() -> str:
    out = io.StringIO()
    call_command("erp", "reencrypt", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def raw_rows() -> list[tuple[Any, ...]]:
    """Every column of every connection, as the database holds it."""
    with db.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Connection._meta.db_table}")
        return list(cursor.fetchall())


def lose_the_key(connection: Connection) -> None:
    """Store the password under a key the server does not have (a rotation gone wrong)."""
    token = Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
    Connection.objects.filter(pk=connection.pk).update(password_encrypted=token)


def member_client(store: Store, email: str) -> Client:
    user = get_user_model().objects.create_user(email, email, TEST_PASSWORD)
    Membership.objects.create(store=store, user=user)
    client = Client()
    client.force_login(user)
    return client


def report_html(exc_info: Any) -> str:
    """Django's HTML error report (every frame's local variables) for an exception
    caught in a test, without the test's own frame (whose locals are the test's)."""
    etype, value, tb = exc_info
    return ExceptionReporter(None, etype, value, tb.tb_next).get_traceback_html()


# ---- at rest --------------------------------------------------------------------------


def test_the_database_row_never_holds_the_plaintext(store, other_store, standin):
    connect(store, standin)
    connect(other_store, standin)  # the same password for two stores
    rows = raw_rows()
    assert len(rows) == 2
    for row in rows:
        assert not any(ERP_PASSWORD in str(value) for value in row)
    tokens = list(Connection.objects.values_list("password_encrypted", flat=True))
    # Fernet uses a random IV: equal passwords do not look equal at rest.
    assert tokens[0] != tokens[1]
    # Nor in a dump of the whole database (what a backup holds).
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert ERP_PASSWORD not in dump.getvalue()
    assert {c.get_password() for c in Connection.objects.all()} == {ERP_PASSWORD}


def test_keys_are_not_derived_from_the_secret_key(store, standin, settings):
    connect(store, standin)
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert Connection.objects.get().get_password() == ERP_PASSWORD
    settings.VXM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(secrets.SecretUnreadable):
        Connection.objects.get().get_password()


# ---- rotation -------------------------------------------------------------------------


def test_rotation_keeps_every_row_readable(store, other_store, settings, standin):
    old = settings.VXM_ENCRYPTION_KEYS[0]
    connect(store, standin)
    connect(other_store, standin, password="otra-clave")
    before = dict(Connection.objects.values_list("store__slug", "password_encrypted"))

    # 1. The new key goes first; the old one stays so existing rows still decrypt.
    new = Fernet.generate_key().decode()
    settings.VXM_ENCRYPTION_KEYS = [new, old]
    passwords = {c.store.slug: c.get_password() for c in Connection.objects.select_related("store")}
    assert passwords == {"sur": ERP_PASSWORD, "norte": "otra-clave"}

    # 2. Every row is encrypted again, with the first key.
    assert "2 contraseñas cifradas de nuevo" in reencrypt()
    after = dict(Connection.objects.values_list("store__slug", "password_encrypted"))
    assert all(after[slug] != before[slug] for slug in before)
    assert Fernet(new.encode()).decrypt(after["sur"].encode()).decode() == ERP_PASSWORD

    # 3. The old key is dropped: everything still reads, and updates still log in.
    settings.VXM_ENCRYPTION_KEYS = [new]
    passwords = {c.store.slug: c.get_password() for c in Connection.objects.select_related("store")}
    assert passwords == {"sur": ERP_PASSWORD, "norte": "otra-clave"}
    assert sync(store).status == RunStatus.SUCCEEDED
    for row in raw_rows():
        assert not any(ERP_PASSWORD in str(value) for value in row)


def test_reencrypt_reports_an_unreadable_row_and_rotates_the_others(
    store, other_store, settings, standin
):
    old = settings.VXM_ENCRYPTION_KEYS[0]
    lost = connect(store, standin)
    lose_the_key(lost)
    lost_token = Connection.objects.get(pk=lost.pk).password_encrypted
    connect(other_store, standin, password="otra-clave")
    new = Fernet.generate_key().decode()
    settings.VXM_ENCRYPTION_KEYS = [new, old]

    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("erp", "reencrypt", stdout=out, stderr=io.StringIO())
    assert "sur" in str(info.value) and "norte" not in str(info.value)
    assert "1 contraseñas cifradas de nuevo" in out.getvalue()
    # The readable row moved to the new key; the unreadable one was left alone.
    settings.VXM_ENCRYPTION_KEYS = [new]
    assert Connection.objects.get(store=other_store).get_password() == "otra-clave"
    assert Connection.objects.get(pk=lost.pk).password_encrypted == lost_token


# ---- an unreadable row: that store needs attention, nothing else breaks -------------------


def test_an_unreadable_row_affects_only_its_own_store(store, other_store, standin):
    lose_the_key(connect(store, standin))
    connect(other_store, standin)
    ours = member_client(store, "a@sur.test")
    theirs = member_client(other_store, "b@norte.test")

    page = ours.get(reverse("erp:integrations", args=[store.slug]))
    assert page.status_code == 200
    assert "Necesita atención" in page.content.decode()
    assert "La contraseña guardada no se puede leer" in page.content.decode()

    failed = sync(store)
    assert failed.status == RunStatus.FAILED
    assert failed.error_code == ErrorCode.SECRET_UNREADABLE
    assert "Volvé a escribir la contraseña" in failed.error_message

    # The other store: its page, its runs, its password are all fine.
    page = theirs.get(reverse("erp:integrations", args=[other_store.slug]))
    assert page.status_code == 200
    assert "Necesita atención" not in page.content.decode()
    assert sync(other_store).status == RunStatus.SUCCEEDED
    assert Connection.objects.get(store=other_store).get_password() == ERP_PASSWORD


# ---- configuration errors, and what error reports show ----------------------------------


def test_missing_or_broken_keys_say_so_without_quoting_them(settings):
    settings.VXM_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="VXM_ENCRYPTION_KEYS is not set"):
        secrets.encrypt("x")
    assert "not set" in (secrets.check_keys() or "")

    broken = "not-a-fernet-key-" + "Q" * 20
    settings.VXM_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), broken]
    with pytest.raises(ImproperlyConfigured) as info:
        secrets.decrypt("anything")
    assert broken not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__

    settings.VXM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert secrets.check_keys() is None


def test_error_reports_show_neither_the_password_nor_the_keys(store, settings, monkeypatch):
    # A key that is present but broken: the report must not show it either.
    broken = "not-a-fernet-key-" + "Q" * 20
    settings.VXM_ENCRYPTION_KEYS = [broken]
    connection = Connection(store=store, kind="nonsistemas", url="https://x/", username="u")
    with pytest.raises(ImproperlyConfigured):
        try:
            connection.set_password(ERP_PASSWORD)
        except ImproperlyConfigured:
            html = report_html(sys.exc_info())
            raise
    assert "set_password" in html and "_fernet" in html  # the frames are there...
    assert ERP_PASSWORD not in html and broken not in html  # ...their values are not

    # A failure deep inside cryptography while encrypting: its frames name the
    # password `data`, and are hidden all the same.
    good = Fernet.generate_key().decode()
    settings.VXM_ENCRYPTION_KEYS = [good]

    def explode(self: Fernet, data: bytes, current_time: int, iv: bytes) -> bytes:
        raise RuntimeError("no entropy")

    monkeypatch.setattr(Fernet, "_encrypt_from_parts", explode)
    with pytest.raises(RuntimeError):
        try:
            secrets.encrypt(ERP_PASSWORD)
        except RuntimeError:
            html = report_html(sys.exc_info())
            raise
    assert "explode" in html
    assert ERP_PASSWORD not in html and good not in html


def crash_while_unpadding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fernet fails right after decrypting: its frame holds the padded plaintext."""

    class Broken:
        def unpadder(self) -> Any:
            raise RuntimeError("the unpadder broke")

    monkeypatch.setattr(cryptography.fernet, "_PKCS7_128", Broken())


@pytest.mark.parametrize("call", [secrets.decrypt, secrets.reencrypt])
def test_a_crash_while_decrypting_hides_the_password(monkeypatch, call):
    # Called directly (as `vxm erp reencrypt` calls reencrypt), with no decorated
    # caller above: the function's own `sensitive_variables` is all that hides it.
    token = secrets.encrypt(ERP_PASSWORD)
    crash_while_unpadding(monkeypatch)
    with pytest.raises(RuntimeError):
        try:
            call(token)
        except RuntimeError:
            html = report_html(sys.exc_info())
            raise
    assert "_decrypt_data" in html and "plaintext_padded" in html  # the frame is there...
    assert ERP_PASSWORD not in html  # ...its value is not


def test_a_crash_while_reading_the_keys_hides_them(settings, monkeypatch):
    # The deploy check calls the key loader with no decorated caller above it.
    key = Fernet.generate_key().decode()
    settings.VXM_ENCRYPTION_KEYS = [key]

    def explode(self: Fernet, key: bytes, backend: Any = None) -> None:
        raise RuntimeError("no AES here")

    monkeypatch.setattr(Fernet, "__init__", explode)
    with pytest.raises(RuntimeError):
        try:
            secrets.check_keys()
        except RuntimeError:
            html = report_html(sys.exc_info())
            raise
    assert "_fernet" in html and "explode" in html
    assert key not in html


@pytest.mark.parametrize(
    "new_url",
    [
        lambda url: url.replace("127.0.0.1", "localhost"),  # another host
        lambda url: url.rsplit(":", 1)[0] + ":1",  # another port
        lambda url: url.replace("http://", "https://"),  # another scheme
    ],
    ids=["host", "port", "scheme"],
)
def test_saving_another_server_without_the_password_is_refused_by_the_action_itself(
    store, standin, new_url
):
    # The form checks it too; the action re-checks because it guards the stored
    # password: a caller that skipped the form (the CLI, a future API) must not
    # send the old server's password to a new one.
    connection = connect(store, standin)
    before = (connection.url, connection.password_encrypted)
    with pytest.raises(ValueError):
        actions.save_settings(
            store,
            kind="nonsistemas",
            url=new_url(standin.url),
            username="api-ventas",
            password=None,
        )
    connection.refresh_from_db()
    assert (connection.url, connection.password_encrypted) == before
    # The same server under another path keeps the stored password.
    actions.save_settings(
        store, kind="nonsistemas", url=standin.url + "/ns", username="api-ventas", password=None
    )
    connection.refresh_from_db()
    assert connection.url == standin.url + "/ns" and connection.get_password() == ERP_PASSWORD
