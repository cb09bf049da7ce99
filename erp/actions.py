"""What an admin (web panel) or an operator (`vxm erp`) does to a store's ERP
integration: save its settings, verify it, start an update.

Each action that writes does so in one transaction together with its AuditEvent,
so the audit trail can never miss a change nor record one that rolled back.
"""

import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, gettext_noop, ngettext
from django.views.decorators.debug import sensitive_variables

from erp import registry, stored_text
from erp.engine import active_run, request_update
from erp.errors import ErpError, ErrorCode, printable
from erp.forms import ca_summaries, origin_of
from erp.models import AuditAction, AuditEvent, Connection, Run, RunMode
from stores.models import Store

logger = logging.getLogger("erp.actions")

# Stored as written (audit rows keep it); shown translated (erp/stored_text.actor_label).
CLI_ACTOR = "Línea de comandos"
ORIGIN_LABELS = {"cli": gettext_lazy("Línea de comandos"), "schedule": gettext_lazy("Programada")}

# How often the panel's buttons may be pressed per store. Each Verify and each
# update logs in to the ERP, and NonSistemas allows about 5 logins a minute per
# user: a few impatient clicks must not lock the store's API user out (nor let a
# panel user hammer the ERP). The operators' command line is not limited.
PANEL_LIMITS: dict[str, tuple[int, timedelta]] = {
    AuditAction.VERIFIED: (4, timedelta(minutes=1)),
    AuditAction.UPDATE_REQUESTED: (6, timedelta(minutes=10)),
    # A preview reads the whole ERP like an update.
    AuditAction.PREVIEW_REQUESTED: (6, timedelta(minutes=10)),
}
VERIFY_REQUESTED = "Verificación pedida"


class PanelLimitReached(Exception):
    """The store's panel already used its verifications or updates for now."""

    def __init__(self, action: str, wait: timedelta) -> None:
        self.action = action
        self.wait = wait
        limit, window = PANEL_LIMITS[action]
        seconds = max(1, math.ceil(wait.total_seconds()))
        if seconds < 60:
            how_long = ngettext("%(n)s segundo", "%(n)s segundos", seconds) % {"n": seconds}
        else:
            minutes = math.ceil(seconds / 60)
            how_long = ngettext("%(n)s minuto", "%(n)s minutos", minutes) % {"n": minutes}
        if action == AuditAction.VERIFIED:
            message = gettext(
                "Ya se verificó la conexión %(limit)s veces en el último minuto. Esperá un "
                "momento (%(wait)s) y probá de nuevo: el ERP limita los ingresos por minuto."
            ) % {"limit": limit, "wait": how_long}
        else:
            message = gettext(
                "Se pidieron %(limit)s actualizaciones en los últimos %(window)s minutos. "
                "Esperá un rato (%(wait)s) y probá de nuevo."
            ) % {"limit": limit, "window": int(window.total_seconds() // 60), "wait": how_long}
        super().__init__(message)
        self.message = message


def actor_name(user: Any) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.email or user.username)
    return CLI_ACTOR


def audit(store: Store, user: Any, action: str, detail: str) -> AuditEvent:
    """One row of the store's audit trail: who (a panel user, or the command line)."""
    return AuditEvent.objects.create(
        store=store,
        user=user if user is not None and user.is_authenticated else None,
        actor=actor_name(user),
        action=action,
        detail=printable(detail)[:500],
    )


def requested_by_label(run: Run) -> str:
    """Who started a run, as the history shows it."""
    if run.requested_by is not None:
        return str(run.requested_by.email or run.requested_by.username)
    if run.origin == "panel":
        return gettext("Usuario eliminado")
    return str(ORIGIN_LABELS.get(run.origin, run.origin))


def _claim_panel_slot(store: Store, action: str) -> None:
    """Raise PanelLimitReached if the store's panel used up `action` for now.

    Must run inside the transaction that records the attempt (the audit row the
    limit counts), with the store's connection row locked: the count and the
    record are then one step, so of any number of simultaneous clicks only those
    within the limit get to call the ERP. Counting rows written after the ERP
    answered let 8 simultaneous clicks make 8 logins.
    """
    limit, window = PANEL_LIMITS[action]
    now = timezone.now()
    recent = list(
        AuditEvent.objects.filter(
            store=store, action=action, user__isnull=False, at__gt=now - window
        )
        .order_by("-at")
        .values_list("at", flat=True)[:limit]
    )
    if len(recent) >= limit:
        # A slot frees when the limit-th most recent attempt leaves the window.
        raise PanelLimitReached(action, recent[limit - 1] + window - now)


def _lock_connection(store: Store) -> Connection | None:
    """The store's connection, locked until the transaction ends (None: there is none).

    The connection row, not the store's: a CSV import holds the store's row for
    as long as it writes, and a click must not wait for it. On SQLite the
    transaction is IMMEDIATE (vxm/settings.py), which serializes it as well.
    """
    return Connection.objects.select_for_update().filter(store=store).first()


class ServerChangeWhileRunning(Exception):
    """The URL or ERP cannot change while an update of the old one is in progress:
    its end would record a watermark of the old server as the new one's."""

    def __init__(self, run: Run) -> None:
        super().__init__(
            f"Hay una actualización en curso (#{run.pk}): esperá a que termine para cambiar la URL."
        )
        self.run = run


# Hidden from error reports' frame variables, like the view's POST parameter.
@sensitive_variables("password")
def save_settings(
    store: Store,
    *,
    kind: str,
    url: str,
    username: str,
    password: str | None,
    ca_cert_pem: str | None = None,
    user: Any = None,
) -> Connection:
    """Create or update the store's connection; `password=None` keeps the stored one.

    `ca_cert_pem` is the private CA to trust: PEM to set, "" to remove, None to
    keep (except when the ERP changes: the old one's CA is not trusted for the
    new one). The caller validated the values with `ConnectionForm`; the rule
    that a new server needs the password typed again is re-checked here because
    it guards the stored password. Everything commits with its audit rows, or
    nothing does.
    """
    provider = registry.provider(kind)
    with transaction.atomic():
        connection = Connection.objects.select_for_update().filter(store=store).first()
        created = connection is None
        if connection is None:
            connection = Connection(store=store, kind=kind)
        server_changed = (
            created or connection.kind != kind or origin_of(connection.url) != origin_of(url)
        )
        if password is None and server_changed:
            raise ValueError("the password must be given for a new connection or server")
        if password is None and ca_cert_pem and ca_cert_pem != connection.ca_cert_pem:
            # A new CA is trusted to vouch for any server name: like a new server,
            # the stored password is only sent under it when typed again.
            raise ValueError("the password must be given with a new CA certificate")
        if not created and (connection.kind != kind or connection.url != url):
            running = active_run(store)
            if running is not None:
                raise ServerChangeWhileRunning(running)
            # The watermark is a moment on the old instance's clock: for another
            # instance the next update must read everything. The check above races
            # with a run being claimed (and the CLI's runs); the new generation is
            # what keeps such a run from moving the new server's watermark.
            connection.watermark = None
            connection.erp_clock_offset = None
            connection.generation += 1
        if ca_cert_pem is None and not created and connection.kind != kind:
            ca_cert_pem = ""
        if (
            created
            or password is not None
            or (connection.kind, connection.url, connection.username) != (kind, url, username)
        ):
            connection.settings_changed()
        connection.kind = kind
        connection.url = url
        connection.username = username
        if password is not None:
            connection.set_password(password)
        connection.save()
        detail = (
            f"{provider.name}: URL {url}, usuario {username}, "
            f"{'contraseña nueva' if password is not None else 'misma contraseña'}"
        )
        audit(store, user, AuditAction.CONFIGURED, detail)
        _save_ca_certificate(store, connection, ca_cert_pem, user)
        # Saved settings are what a paused schedule waits for (erp/schedule.py);
        # imported here because erp.schedule imports this module.
        from erp.schedule import resume_after_settings_saved

        resume_after_settings_saved(store)
    return connection


def _save_ca_certificate(
    store: Store, connection: Connection, new_ca: str | None, user: Any
) -> None:
    """Store (PEM), remove ("") or keep (None) the connection's private CA, audited."""
    if new_ca is None or new_ca == connection.ca_cert_pem:
        return
    connection.settings_changed()
    Connection.objects.filter(pk=connection.pk).update(
        ca_cert_pem=new_ca,
        last_check_at=connection.last_check_at,
        last_check_ok=connection.last_check_ok,
        last_check_message=connection.last_check_message,
    )
    connection.ca_cert_pem = new_ca
    if new_ca:
        described = "; ".join(
            f"{ca.subject} (vence {ca.not_after:%Y-%m-%d})" for ca in ca_summaries(new_ca)
        )
        detail = f"Certificado de CA nuevo: {described}"
    else:
        detail = "Certificado de CA quitado"
    audit(store, user, AuditAction.CONFIGURED, detail)


@dataclass(frozen=True)
class VerifyOutcome:
    ok: bool
    message: str  # as stored: Spanish
    code: str = ""
    product: str = ""
    version: str = ""
    # The message untranslated with its parameters (erp/stored_text.py).
    packed: dict[str, Any] | None = None

    @property
    def shown(self) -> str:
        """The message in the active language (the person's, or the CLI's)."""
        return stored_text.render(self.packed, self.message)


def _outcome(ok: bool, code: str, msgid: str, **params: Any) -> VerifyOutcome:
    """An outcome whose message is ours: stored in Spanish, shown in any language."""
    return VerifyOutcome(
        ok=ok,
        code=code,
        message=msgid % params if params else msgid,
        packed=stored_text.pack(msgid, **params),
        product=params.get("product", ""),
        version=params.get("version", ""),
    )


def verify_connection(store: Store, *, user: Any = None, panel: bool = False) -> VerifyOutcome:
    """Try the saved connection (changes nothing but the audit trail).

    The attempt is recorded ("Verificación pedida") before the ERP is called and
    completed with the result afterwards. From the panel (`panel=True`) it is
    first counted against the store's limit, and PanelLimitReached is raised
    without calling the ERP when the limit is reached.
    """
    with transaction.atomic():
        connection = _lock_connection(store)
        if connection is None:
            return _outcome(
                False,
                "not_connected",
                gettext_noop(
                    "Esta tienda todavía no tiene un ERP configurado: "
                    "guardá la configuración primero."
                ),
            )
        if panel:
            _claim_panel_slot(store, AuditAction.VERIFIED)
        event = audit(store, user, AuditAction.VERIFIED, VERIFY_REQUESTED)
    try:
        source = registry.source_for(connection)
        try:
            verification = source.verify()
        finally:
            source.close()
    except ErpError as e:
        outcome = VerifyOutcome(ok=False, code=e.code, message=e.message, packed=e.packed)
    except Exception:
        # A bug of ours, not a diagnosis: logged with its traceback, shown generically.
        logger.exception("verify of store %s crashed", store.slug)
        outcome = _outcome(
            False,
            ErrorCode.INTERNAL,
            gettext_noop(
                "La verificación falló por un error interno nuestro. Probá de nuevo en unos "
                "minutos y, si se repite, escribinos."
            ),
        )
    else:
        outcome = _outcome(
            True,
            "",
            gettext_noop("La conexión funciona: %(product)s %(version)s."),
            product=verification.product,
            version=verification.version,
        )
    connection.record_check(ok=outcome.ok, message=outcome.message, message_i18n=outcome.packed)
    # The audit row's detail, shown in the reader's language (the failure's own
    # message packed inside, so it is translated too).
    if outcome.ok:
        said = gettext_noop("Correcta: %(product)s %(version)s")
        params: dict[str, Any] = {"product": outcome.product, "version": outcome.version}
        detail = said % params
    else:
        said = gettext_noop("Falló: %(error)s")
        params = {"error": outcome.packed or outcome.message}
        detail = said % {"error": outcome.message}
    AuditEvent.objects.filter(pk=event.pk).update(
        detail=printable(detail)[:500], detail_i18n=stored_text.pack(said, **params)
    )
    return outcome


def start_update(
    store: Store,
    *,
    user: Any = None,
    full: bool = False,
    origin: str = "panel",
    enqueue: bool = True,
    mode: str = RunMode.UPDATE,
) -> Run:
    """Record a queued run (an update, or a preview with `mode`) and its audit row
    (the engine does both in one transaction); raises UpdateAlreadyRunning /
    NotConnected, and from the panel PanelLimitReached when the store's limit is
    reached (nothing recorded then).

    A panel request is counted and recorded in one transaction with the store's
    connection locked, so simultaneous clicks cannot all pass the count; the ERP
    is called only later, by the run, once that transaction has committed.
    """
    asked = dict(user=user, full=full, origin=origin, enqueue=enqueue, mode=mode)
    if origin != "panel":
        return request_update(store, **asked)
    with transaction.atomic():
        if _lock_connection(store) is not None:
            _claim_panel_slot(
                store,
                AuditAction.PREVIEW_REQUESTED
                if mode == RunMode.PREVIEW
                else AuditAction.UPDATE_REQUESTED,
            )
        # Without a connection the engine raises NotConnected: nothing to count.
        return request_update(store, **asked)
