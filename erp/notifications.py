"""Emails to a store's admins about its automatic (scheduled) updates.

One email when something needs them: the first failure of a streak, a pause (a
failure only they can fix), the recovery after failures, an automatic update
held for their review. Never one per successful run, nor one per failure of a
streak (erp/schedule.py decides when to call these).

Each is sent after the transaction that recorded the outcome has committed, to
every user with a membership of the store and an email address, each in the
language they chose (vxm.UserPreference; Spanish if they never did), with what
to do and an absolute link to the page (`VXM_BASE_URL`).
Emails carry the run's error message (our own words, see erp/errors.py), never
the ERP password nor a token. A mail server that fails is logged and does not
fail the task that called.
"""

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from erp import stored_text
from erp.models import Run
from stores.models import Store
from vxm.language import SUPPORTED

if TYPE_CHECKING:
    from erp.models import Schedule

logger = logging.getLogger("erp.notifications")


def recipients(store: Store) -> list[str]:
    """The store's admins' addresses (each once, in a stable order)."""
    emails = (
        get_user_model()
        .objects.filter(memberships__store=store, is_active=True)
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
        .distinct()
    )
    return list(emails)


def absolute_url(path: str) -> str:
    return settings.VXM_BASE_URL.rstrip("/") + path


def _erp_page(store: Store) -> str:
    return absolute_url(reverse("erp:integrations", args=[store.slug]))


def _run_page(run: Run) -> str:
    return absolute_url(reverse("erp:run", args=[run.store.slug, run.pk]))


def _when(run: Run) -> str:
    moment = run.finished_at or run.created_at or timezone.now()
    return f"{moment.astimezone(run.store.tz):%d/%m/%Y %H:%M}"


def send(store: Store, subject: str, body: str) -> bool:
    """One email to all of the store's admins, in the active language; False when
    nobody could get it. (The notices below write to each admin in theirs.)"""
    to = recipients(store)
    if not to:
        logger.warning("store %s has no admin with an email: %s not sent", store.slug, subject)
        return False
    return _send_to(store, to, subject, body)


def _send_to(store: Store, to: list[str], subject: str, body: str) -> bool:
    message = EmailMessage(
        subject=f"[VentasxMayor] {store.name}: {subject}",
        body=body
        + "\n\n"
        + _("— VentasxMayor (este aviso es automático; no hace falta responder)"),
        to=to,
    )
    try:
        message.send()
    except Exception:
        logger.exception("email to the admins of store %s not sent: %s", store.slug, subject)
        return False
    return True


def recipients_by_language(store: Store) -> dict[str, list[str]]:
    """The store's admins' addresses by the language each chose (vxm.UserPreference);
    the store's default, Spanish, for who never chose one."""
    by_language: dict[str, list[str]] = {}
    users = (
        get_user_model()
        .objects.filter(memberships__store=store, is_active=True)
        .exclude(email="")
        .order_by("email")
        .values_list("email", "preference__language")
        .distinct()
    )
    for email, language in users:
        chosen = language if language in SUPPORTED else settings.LANGUAGE_CODE
        if email not in by_language.get(chosen, []):
            by_language.setdefault(chosen, []).append(email)
    return by_language


def send_each_language(store: Store, compose: Callable[[], tuple[str, str]]) -> bool:
    """One email per language of the store's admins, `compose()` (subject, body)
    written in it; False when nobody could get it."""
    groups = recipients_by_language(store)
    if not groups:
        logger.warning("store %s has no admin with an email: nothing sent", store.slug)
        return False
    sent = False
    for language, to in sorted(groups.items()):
        with translation.override(language):
            subject, body = compose()
            sent = _send_to(store, to, subject, body) or sent
    return sent


def notify_failed(run: Run, schedule: "Schedule") -> bool:
    """The first scheduled update of a streak failed (later ones retry quietly)."""
    from erp.schedule import backoff

    store = run.store

    def compose() -> tuple[str, str]:
        retry = schedule.next_run_at
        retry_text = (
            _("Vamos a reintentar solos el %(when)s (y cada vez más espaciado si sigue fallando).")
            % {"when": f"{retry.astimezone(store.tz):%d/%m/%Y %H:%M}"}
            if retry is not None
            else _("Vamos a reintentar solos en %(minutes)d minutos.")
            % {"minutes": backoff(1).total_seconds() // 60}
        )
        body = "\n\n".join(
            [
                _("La actualización automática de stock y precios de «%(store)s» falló (%(when)s).")
                % {"store": store.name, "when": _when(run)},
                _("Qué pasó: %(message)s")
                % {"message": stored_text.run_error(run) or run.error_code},
                retry_text,
                _(
                    "No te vamos a escribir por cada reintento: te avisamos cuando vuelva a "
                    "funcionar."
                ),
                _("Ver la actualización: %(url)s") % {"url": _run_page(run)},
            ]
        )
        return _("falló la actualización automática"), body

    return send_each_language(store, compose)


def notify_paused(run: Run, schedule: "Schedule") -> bool:
    """Scheduled updates paused: a failure only the admin can fix."""
    from erp.schedule import pause_advice

    store = run.store

    def compose() -> tuple[str, str]:
        body = "\n\n".join(
            [
                _(
                    "Pausamos las actualizaciones automáticas de stock y precios de «%(store)s»: "
                    "la del %(when)s falló por algo que reintentar no arregla."
                )
                % {"store": store.name, "when": _when(run)},
                _("Qué pasó: %(message)s")
                % {"message": stored_text.run_error(run) or run.error_code},
                _("Qué hacer: %(advice)s") % {"advice": pause_advice(schedule)},
                _(
                    "Mientras tanto no reintentamos (así el ERP no bloquea al usuario de la API) y "
                    "el stock de la tienda no se actualiza solo."
                ),
                _("Configuración del ERP: %(url)s") % {"url": _erp_page(store)},
            ]
        )
        return _("actualizaciones automáticas pausadas"), body

    return send_each_language(store, compose)


def notify_recovered(run: Run) -> bool:
    """The first scheduled update that worked after failures or a pause."""
    store = run.store

    def compose() -> tuple[str, str]:
        body = "\n\n".join(
            [
                _(
                    "Las actualizaciones automáticas de stock y precios de «%(store)s» volvieron a "
                    "funcionar: la del %(when)s terminó bien."
                )
                % {"store": store.name, "when": _when(run)},
                _("No hace falta que hagas nada."),
                _("Ver la actualización: %(url)s") % {"url": _run_page(run)},
            ]
        )
        return _("las actualizaciones automáticas volvieron a funcionar"), body

    return send_each_language(store, compose)


def notify_held(run: Run) -> bool:
    """An automatic update was held by a guard rail (issue #11) and waits for an admin.

    Call it once, when a run ends held; it emails only for scheduled runs (a
    person who pressed the button sees the held run on the page).
    """
    if run.origin != "schedule":
        return False
    store = run.store

    def compose() -> tuple[str, str]:
        reasons = [
            str(finding.get("message", ""))
            for finding in (run.guard_findings or [])
            if isinstance(finding, dict) and finding.get("message")
        ]
        parts = [
            _(
                "La actualización automática de stock y precios de «%(store)s» del %(when)s quedó "
                "retenida: no se cambió nada en la tienda."
            )
            % {"store": store.name, "when": _when(run)},
        ]
        if reasons:
            parts.append(_("Por qué: %(reasons)s") % {"reasons": " ".join(reasons)})
        parts += [
            _("Qué hacer: revisá los cambios y aplicala o descartala."),
            _("Ver la actualización: %(url)s") % {"url": _run_page(run)},
        ]
        return _("una actualización automática quedó retenida"), "\n\n".join(parts)

    return send_each_language(store, compose)
