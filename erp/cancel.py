"""Cancelling an update from the panel or the command line (issue #12).

A queued run has touched nothing yet: it is cancelled at once. A running run is
only asked to stop (`Run.cancel_requested_at`): the engine looks at that at
every page boundary and ends the run `cancelled`, keeping the whole pages it
applied and leaving the watermark where it was, so the next update reads again
what this one did not. Both are conditional UPDATEs, so a cancel racing with a
worker claiming the run, with the run ending, or with another cancel changes
the run at most once; the audit row is written in the same transaction.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from erp.actions import ORIGIN_LABELS, audit
from erp.models import AuditAction, Run, RunStatus
from stores.models import Store


class CancelResult(StrEnum):
    CANCELLED = "cancelled"  # it was queued: cancelled now
    REQUESTED = "requested"  # it is running: it stops at the next page boundary
    ALREADY_REQUESTED = "already_requested"  # someone asked before; nothing new
    ENDED = "ended"  # it had already ended: nothing to cancel


@dataclass(frozen=True)
class CancelOutcome:
    result: CancelResult
    run: Run
    message: str

    @property
    def changed(self) -> bool:
        return self.result in (CancelResult.CANCELLED, CancelResult.REQUESTED)


def _user_or_none(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def request_cancel(
    store: Store, run: Run, user: Any = None, origin: str = "panel"
) -> CancelOutcome:
    """Cancel `run` of `store` (queued: now; running: at the next page boundary).

    `user` is the panel user (None from the command line); `origin` is "panel"
    or "cli", as for starting a run. Raises Run.DoesNotExist when the run is not
    the store's. Asking twice is harmless: the second answer says it was asked.
    """
    who = _user_or_none(user)
    now = timezone.now()
    mine = Run.objects.filter(pk=run.pk, store=store)
    with transaction.atomic():
        if mine.filter(status=RunStatus.QUEUED).update(
            status=RunStatus.CANCELLED,
            finished_at=now,
            cancel_requested_at=now,
            cancel_requested_by=who,
            cancel_origin=origin,
        ):
            result = CancelResult.CANCELLED
        elif mine.filter(status=RunStatus.RUNNING, cancel_requested_at__isnull=True).update(
            cancel_requested_at=now, cancel_requested_by=who, cancel_origin=origin
        ):
            result = CancelResult.REQUESTED
        else:
            result = None
        if result is not None:
            audit(
                store,
                user,
                AuditAction.CANCEL_REQUESTED,
                f"Actualización #{run.pk}"
                + (" (estaba en cola)" if result == CancelResult.CANCELLED else ""),
            )
    fresh = Run.objects.select_related("cancel_requested_by").get(pk=run.pk, store=store)
    if result is None:
        result = (
            CancelResult.ALREADY_REQUESTED
            if fresh.status == RunStatus.RUNNING
            else CancelResult.ENDED
        )
    return CancelOutcome(result, fresh, _message(result, fresh))


def cancelled_by_label(run: Run) -> str:
    """Who asked `run` to stop, as the pages show it."""
    if run.cancel_requested_by is not None:
        return str(run.cancel_requested_by.email or run.cancel_requested_by.username)
    if run.cancel_origin == "panel":
        return _("Usuario eliminado")
    return str(ORIGIN_LABELS.get(run.cancel_origin, run.cancel_origin) or _("desconocido"))


def _message(result: CancelResult, run: Run) -> str:
    if result == CancelResult.CANCELLED:
        return _(
            "Actualización #%(id)s cancelada: todavía no había empezado, así que no cambió nada."
        ) % {"id": run.pk}
    if result == CancelResult.REQUESTED:
        return _(
            "Cancelando la actualización #%(id)s: se detiene al terminar la página que está "
            "aplicando. Lo ya aplicado queda y la próxima actualización retoma desde el "
            "último punto seguro."
        ) % {"id": run.pk}
    if result == CancelResult.ALREADY_REQUESTED:
        return _(
            "Ya se pidió cancelar la actualización #%(id)s (%(who)s): se detiene al terminar "
            "la página que está aplicando."
        ) % {"id": run.pk, "who": cancelled_by_label(run)}
    return _("La actualización #%(id)s ya terminó (%(status)s): no hay nada que cancelar.") % {
        "id": run.pk,
        "status": run.get_status_display().lower(),
    }
