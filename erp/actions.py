"""What an admin (web panel) or an operator (`vxm erp`) does to a store's ERP
integration: save its settings, verify it, start an update.

Each action that writes does so in one transaction together with its AuditEvent,
so the audit trail can never miss a change nor record one that rolled back.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from erp import registry
from erp.engine import active_run, request_update
from erp.errors import ErpError, ErrorCode, printable
from erp.forms import ca_summaries, origin_of
from erp.models import AuditAction, AuditEvent, Connection, Run
from stores.models import Store

logger = logging.getLogger("erp.actions")

CLI_ACTOR = "Línea de comandos"
ORIGIN_LABELS = {"cli": CLI_ACTOR, "schedule": "Programada"}

# How often the panel's buttons may be pressed per store. Each Verify and each
# update logs in to the ERP, and NonSistemas allows about 5 logins a minute per
# user: a few impatient clicks must not lock the store's API user out (nor let a
# panel user hammer the ERP). The operators' command line is not limited.
PANEL_LIMITS: dict[str, tuple[int, timedelta]] = {
    AuditAction.VERIFIED: (4, timedelta(minutes=1)),
    AuditAction.UPDATE_REQUESTED: (6, timedelta(minutes=10)),
}


def actor_name(user: Any) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.email or user.username)
    return CLI_ACTOR


def audit(store: Store, user: Any, action: str, detail: str) -> None:
    """One row of the store's audit trail: who (a panel user, or the command line)."""
    AuditEvent.objects.create(
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
        return "Usuario eliminado"
    return ORIGIN_LABELS.get(run.origin, run.origin)


def panel_rate_limited(store: Store, action: str) -> bool:
    limit, window = PANEL_LIMITS[action]
    recent = AuditEvent.objects.filter(
        store=store, action=action, user__isnull=False, at__gte=timezone.now() - window
    )
    return recent.count() >= limit


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
    return connection


def _save_ca_certificate(
    store: Store, connection: Connection, new_ca: str | None, user: Any
) -> None:
    """Store (PEM), remove ("") or keep (None) the connection's private CA, audited."""
    if new_ca is None or new_ca == connection.ca_cert_pem:
        return
    Connection.objects.filter(pk=connection.pk).update(ca_cert_pem=new_ca)
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
    message: str
    code: str = ""
    product: str = ""
    version: str = ""


def verify_connection(store: Store, *, user: Any = None) -> VerifyOutcome:
    """Try the saved connection (changes nothing but the audit trail)."""
    try:
        connection = store.erp_connection
    except Connection.DoesNotExist:
        return VerifyOutcome(
            ok=False,
            code="not_connected",
            message="Esta tienda todavía no tiene un ERP configurado: "
            "guardá la configuración primero.",
        )
    try:
        source = registry.source_for(connection)
        try:
            verification = source.verify()
        finally:
            source.close()
    except ErpError as e:
        outcome = VerifyOutcome(ok=False, code=e.code, message=e.message)
    except Exception:
        # A bug of ours, not a diagnosis: logged with its traceback, shown generically.
        logger.exception("verify of store %s crashed", store.slug)
        outcome = VerifyOutcome(
            ok=False,
            code=ErrorCode.INTERNAL,
            message="La verificación falló por un error interno nuestro. Probá de nuevo en unos "
            "minutos y, si se repite, escribinos.",
        )
    else:
        outcome = VerifyOutcome(
            ok=True,
            product=verification.product,
            version=verification.version,
            message=f"La conexión funciona: {verification.product} {verification.version}.",
        )
    audit(
        store,
        user,
        AuditAction.VERIFIED,
        f"Correcta: {outcome.product} {outcome.version}"
        if outcome.ok
        else f"Falló: {outcome.message}",
    )
    return outcome


def start_update(
    store: Store,
    *,
    user: Any = None,
    full: bool = False,
    origin: str = "panel",
    enqueue: bool = True,
) -> Run:
    """Record a queued run and its audit row (the engine does both in one
    transaction); raises UpdateAlreadyRunning / NotConnected."""
    return request_update(store, user=user, full=full, origin=origin, enqueue=enqueue)
