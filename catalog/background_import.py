"""CSV imports too large for the web request: validated in the request, applied
by a background task.

The request still reads the whole file once to validate it (no database work), so
a bad row is reported at once and nothing is queued. A good file is recorded as
a `CatalogImport`, its task enqueued once that row is committed, and the admin
is sent to its page, which polls until the report is there. The import itself is
`csv_import.import_csv`, the same all-or-nothing transaction as a small file.
"""

import io
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext

from catalog.csv_import import ImportReport, check_csv, import_csv
from catalog.models import CatalogImport, ImportStatus
from stores.models import Membership, Store
from vxm.language import chosen_language

logger = logging.getLogger("catalog.import")

# A queued or running import this old lost its worker (an import of the largest
# allowed file takes minutes, not this): nothing was written, it is marked failed.
STALE_AFTER = timedelta(hours=1)


def applies_in_background(upload: UploadedFile) -> bool:
    return (upload.size or 0) > settings.VXM_CSV_INLINE_BYTES


def queue_import(
    store: Store, upload: UploadedFile, *, actor: str, user: Any = None
) -> tuple[ImportReport, CatalogImport | None]:
    """Validate `upload`; if it is good, record it and enqueue its import.

    Returns the validation report and the queued import (None when the file has
    problems: the report says which, and nothing is queued).
    """
    report = check_csv(upload)
    if not report.ok:
        return report, None
    upload.seek(0)
    with transaction.atomic():
        job = CatalogImport.objects.create(
            store=store,
            requested_by=user if user is not None and user.is_authenticated else None,
            actor=actor,
            filename=(upload.name or "")[:255],
            content=upload.read(),
            size=upload.size or 0,
            rows=report.rows,
        )
        from catalog.tasks import apply_import

        job_id = job.pk
        transaction.on_commit(lambda: apply_import.enqueue(job_id))
    return report, job


def run_queued_import(import_id: int) -> CatalogImport:
    """Claim (queued → running, by a conditional UPDATE) and apply a queued import.

    The catalog's writes and the import's outcome commit together: a worker killed
    at any point leaves either both or neither, so "nothing was imported" is
    always true when the page says it.
    """
    claimed = CatalogImport.objects.filter(pk=import_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:  # delivered twice, or expired meanwhile
        return CatalogImport.objects.get(pk=import_id)
    job = CatalogImport.objects.select_related("store", "requested_by").get(pk=import_id)
    # The report is read by who uploaded the file: written in their language (the
    # store's default, Spanish, when they never chose one).
    with translation.override(chosen_language(job.requested_by) or settings.LANGUAGE_CODE):
        _apply(job)
    job.refresh_from_db()
    return job


def _apply(job: CatalogImport) -> None:
    import_id = job.pk
    try:
        with transaction.atomic():
            # Uploads come from the panel, always by a user: one deleted or no
            # longer a member of the store meanwhile does not get to write.
            if (
                job.requested_by_id is None
                or not Membership.objects.filter(
                    store=job.store, user_id=job.requested_by_id
                ).exists()
            ):
                report = ImportReport(
                    file_error=gettext(
                        "No se importó nada: quien subió el archivo ya no administra esta tienda."
                    )
                )
            else:
                content = io.BytesIO(bytes(job.content))
                report = import_csv(job.store, content, actor=job.actor, user=job.requested_by)
            _record_outcome(import_id, report)
    except Exception:
        logger.exception("import %s of store %s crashed", job.pk, job.store.slug)
        _record_outcome(
            import_id,
            ImportReport(
                file_error=gettext(
                    "No se importó nada: falló por un error interno nuestro. Ya quedó "
                    "registrado; volvé a subir el archivo en unos minutos y, si se repite, "
                    "escribinos."
                )
            ),
        )


def _record_outcome(import_id: int, report: ImportReport) -> None:
    # Unconditional: even if declared stale meanwhile, what really happened wins.
    CatalogImport.objects.filter(pk=import_id).update(
        status=ImportStatus.DONE if report.applied else ImportStatus.FAILED,
        report=report.to_json(),
        finished_at=timezone.now(),
        content=b"",
    )


def expire_stale_imports(store: Store) -> int:
    """Mark imports whose worker never came or died as failed (nothing was written:
    the import is one transaction)."""
    now = timezone.now()
    # Found by whoever looks at the imports (the request's language).
    interrupted = ImportReport(
        file_error=gettext(
            "No se importó nada: la importación se interrumpió antes de terminar. "
            "Volvé a subir el archivo."
        )
    )
    cutoff = now - STALE_AFTER
    # A running import counts from when a worker took it, not from the upload: it
    # may have waited in the queue behind other work.
    return CatalogImport.objects.filter(
        Q(status=ImportStatus.QUEUED, created_at__lt=cutoff)
        | Q(status=ImportStatus.RUNNING, started_at__lt=cutoff),
        store=store,
    ).update(status=ImportStatus.FAILED, report=interrupted.to_json(), finished_at=now, content=b"")
