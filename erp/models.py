"""ERP connections, update runs and what each run could not apply.

A run is recorded first (queued), then claimed (running), then updated with its
outcome. At most one run per store is queued or running: a partial unique
constraint enforces it on SQLite and PostgreSQL alike, so two requests at once
cannot both start one.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from erp import secrets
from stores.models import Store

# A running run whose process has not reported for this long is considered dead
# (killed, its machine lost): it is marked failed and another run may start. The
# running process beats every `erp.engine.BEAT_EVERY` from a thread of its own,
# whatever the run is waiting for, so this can be short: a dead run is recognised
# within a minute, a live one misses three beats in a row before it could be.
STALE_AFTER = timedelta(seconds=45)


class ErpKind(models.TextChoices):
    NONSISTEMAS = "nonsistemas", _("NonSistemas")


class Connection(models.Model):
    """A store's connection to its ERP (one per store)."""

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="erp_connection")
    kind = models.CharField(_("ERP"), max_length=32, choices=ErpKind.choices)
    url = models.CharField(_("URL"), max_length=500)
    username = models.CharField(_("usuario"), max_length=200)
    password_encrypted = models.TextField(editable=False)
    # The store's private certificate authority (PEM), trusted in addition to the
    # public roots for this connection only; empty for an ERP with a public
    # certificate. Verification is on either way (erp/url_guard.py).
    ca_cert_pem = models.TextField(_("certificado de la CA"), blank=True, default="")
    # The `desde` of the next incremental update, in the ERP's own clock. Only a
    # successful run moves it (docs/sync-correctness.md says how it is chosen).
    watermark = models.DateTimeField(null=True, blank=True, editable=False)
    # The ERP's clock minus ours, in seconds, at the last successful run: a later
    # run that finds it smaller knows the ERP's clock moved back, and reads further back.
    erp_clock_offset = models.FloatField(null=True, blank=True, editable=False)
    # The last thing known about whether these settings work: a verification
    # (ok True/False, with its message) or, with ok None, that they were just
    # saved and nobody has tried them yet. The integrations page weighs it
    # against the last finished run, whichever is newer (erp/views.py).
    last_check_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_check_ok = models.BooleanField(null=True, blank=True, editable=False)
    last_check_message = models.TextField(blank=True, default="", editable=False)
    # The message untranslated, for readers of another language (erp/stored_text.py).
    last_check_message_i18n = models.JSONField(null=True, blank=True, editable=False)
    # Bumped whenever the server changes (ERP or URL). A run records the one it
    # read, and its outcome moves the watermark only if it still holds: a run of the
    # old server ending after the change must not hand its watermark to the new one.
    generation = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.store} → {self.get_kind_display()}"

    def settings_changed(self) -> None:
        """Mark the settings as saved and not yet tried (the caller saves)."""
        self.last_check_at = timezone.now()
        self.last_check_ok = None
        self.last_check_message = ""

    def record_check(
        self, *, ok: bool, message: str, message_i18n: dict[str, Any] | None = None
    ) -> None:
        """Record a verification's outcome, unless the settings it tried changed
        meanwhile: a verification of the old server must not vouch for the new."""
        at = timezone.now()
        Connection.objects.filter(
            pk=self.pk,
            kind=self.kind,
            url=self.url,
            username=self.username,
            password_encrypted=self.password_encrypted,
            ca_cert_pem=self.ca_cert_pem,
        ).update(
            last_check_at=at,
            last_check_ok=ok,
            last_check_message=message,
            last_check_message_i18n=message_i18n,
        )
        self.last_check_at, self.last_check_ok, self.last_check_message = at, ok, message
        self.last_check_message_i18n = message_i18n

    # Sensitive so that a failure while encrypting never puts the password in
    # Django's error report (see erp/secrets.py).
    @sensitive_variables("password")
    def set_password(self, password: str) -> None:
        self.password_encrypted = secrets.encrypt(password)

    @sensitive_variables()
    def get_password(self) -> str:
        return secrets.decrypt(self.password_encrypted)


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("En cola")
    RUNNING = "running", _("En curso")
    SUCCEEDED = "succeeded", _("Completada")
    WARNINGS = "warnings", _("Completada con avisos")
    FAILED = "failed", _("Falló")
    # Issue #11: a guard rail tripped; nothing written, waiting for a person to
    # apply it (→ queued → running → succeeded) or discard it.
    HELD = "held", _("Retenida")
    DISCARDED = "discarded", _("Descartada")
    # Issue #12: stopped at a page boundary because someone asked.
    CANCELLED = "cancelled", _("Cancelada")


ACTIVE_STATUSES = [RunStatus.QUEUED, RunStatus.RUNNING]
# Runs that tried the ERP to the end (a discarded or cancelled run says nothing
# about whether the settings work).
FINISHED_STATUSES = [RunStatus.SUCCEEDED, RunStatus.WARNINGS, RunStatus.FAILED]


class RunMode(models.TextChoices):
    """What a run does with what it reads (issue #11)."""

    UPDATE = "update", _("Actualización")
    # Reads the ERP like an update and writes nothing to the catalog.
    PREVIEW = "preview", _("Vista previa")
    # Puts back what another run (`Run.undoes`) changed.
    UNDO = "undo", _("Deshacer")


class RunPhase(models.TextChoices):
    """What a running run is doing now (for progress)."""

    NONE = "", _("—")
    PLANNING = "planning", _("Leyendo el ERP")
    APPLYING = "applying", _("Aplicando cambios")


class Run(models.Model):
    """One update of a store's stock and prices from its ERP."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="erp_runs")
    kind = models.CharField(max_length=32, choices=ErpKind.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    full = models.BooleanField(_("actualización completa"), default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "panel", "cli", "schedule": where it was started from, for the history page.
    origin = models.CharField(max_length=16, default="panel")
    mode = models.CharField(max_length=16, choices=RunMode.choices, default=RunMode.UPDATE)
    phase = models.CharField(max_length=16, choices=RunPhase.choices, default="", blank=True)
    # An undo run: the run whose changes it puts back.
    undoes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="undone_by"
    )
    # The guard rails a run tripped (why it is held), as the engine recorded them:
    # a list of {"rule", "message", "examples"}.
    guard_findings = models.JSONField(default=list, blank=True)
    # Who applied or discarded a held run, and when.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # Someone asked a running run to stop (it ends `cancelled` at a page boundary).
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # Who asked it to stop (None from the command line, or a user since deleted;
    # `cancel_origin` tells which), for "Cancelada por ..." (erp/cancel.py).
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancel_origin = models.CharField(max_length=16, blank=True, default="")
    # How many items the ERP announced it would send (for progress), when it says.
    total_items = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # What was asked (None: everything) and the watermark the connection takes on success.
    desde = models.DateTimeField(null=True, blank=True)
    next_watermark = models.DateTimeField(null=True, blank=True)
    # The connection's `generation` this run read its settings (and watermark) from.
    connection_generation = models.PositiveIntegerField(null=True, blank=True)

    received = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    stock_changed = models.PositiveIntegerField(default=0)
    price_changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    ambiguous = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    price_rejected = models.PositiveIntegerField(default=0)
    discontinued = models.PositiveIntegerField(default=0)
    # Matched store items the run left alone because they are locked against the ERP.
    locked = models.PositiveIntegerField(default=0)
    # Items a run applied later (a held run) left alone because the store changed
    # them after the run read them.
    changed_meanwhile = models.PositiveIntegerField(default=0)
    # Transport details, shown only as a detail of the run.
    reread = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    relogins = models.PositiveIntegerField(default=0)

    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    error_message_i18n = models.JSONField(
        null=True, blank=True, editable=False
    )  # erp/stored_text.py

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["store"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_run_per_store",
            )
        ]
        indexes = [
            # The history of runs and the ERP page's recent runs, newest first.
            models.Index(fields=["store", "-created_at", "-id"], name="run_store_created"),
            # The integration's health and the catalog's "updated 12 min ago"
            # (erp/health.py): the store's newest finished runs, read from the top.
            models.Index(fields=["store", "-finished_at"], name="run_store_finished"),
            # The last run that read the whole ERP (full, or the first): rare among
            # many incremental ones, so partial, and found without walking them.
            models.Index(
                fields=["store", "-finished_at"],
                condition=Q(desde__isnull=True),
                name="run_store_whole_read",
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} {self.store} {self.status}"

    COUNTERS = (
        "received",
        "matched",
        "stock_changed",
        "price_changed",
        "unchanged",
        "unmatched",
        "ambiguous",
        "invalid",
        "price_rejected",
        "discontinued",
        "locked",
        "changed_meanwhile",
        "reread",
        "pages",
        "requests",
        "retries",
        "relogins",
    )

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTERS}


class IssueKind(models.TextChoices):
    UNMATCHED = "unmatched", _("Código sin producto en la tienda")
    AMBIGUOUS = "ambiguous", _("SKU ambiguo")
    INVALID = "invalid", _("Ítem inválido")
    PRICE_REJECTED = "price_rejected", _("Precio no aplicado")
    DISCONTINUED = "discontinued", _("Discontinuado en el ERP")
    LOCKED = "locked", _("Bloqueado en la tienda")
    CHANGED_MEANWHILE = "changed_meanwhile", _("Cambiado en la tienda mientras tanto")


class RunIssue(models.Model):
    """An ERP item a run did not apply (wholly or in part), and why."""

    # Indexed by `runissue_run_id` below, which starts with it.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="issues", db_index=False)
    # The kind's value is also the name of the run's counter of it.
    kind = models.CharField(max_length=32, choices=IssueKind.choices)
    code = models.CharField(_("código ERP"), max_length=200, blank=True)
    sku = models.CharField(max_length=100, blank=True)
    reason = models.CharField(_("motivo"), max_length=300)
    reason_i18n = models.JSONField(null=True, blank=True, editable=False)  # erp/stored_text.py

    class Meta:
        ordering = ["id"]
        indexes = [
            # The run page lists a run's issues, all or of one kind, keyset-paged by
            # id: each page is a walk of one of these (a full update can leave
            # 100,000 issues; sorting them on every page view would not do).
            models.Index(fields=["run", "kind", "id"], name="runissue_run_kind_id"),
            models.Index(fields=["run", "id"], name="runissue_run_id"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.code}: {self.reason}"


class AuditAction(models.TextChoices):
    CONFIGURED = "configured", _("Cambió la configuración")
    VERIFIED = "verified", _("Verificó la conexión")
    UPDATE_REQUESTED = "update_requested", _("Pidió una actualización")
    DISCONNECTED = "disconnected", _("Desconectó el ERP")
    PREVIEW_REQUESTED = "preview_requested", _("Pidió una vista previa")
    RUN_APPLIED = "run_applied", _("Aplicó una actualización retenida")
    RUN_DISCARDED = "run_discarded", _("Descartó una actualización retenida")
    UNDO_REQUESTED = "undo_requested", _("Deshizo una actualización")
    CANCEL_REQUESTED = "cancel_requested", _("Canceló una actualización")
    SCHEDULE_CHANGED = "schedule_changed", _("Cambió las actualizaciones automáticas")
    GUARDS_CHANGED = "guards_changed", _("Cambió los controles de seguridad")


class AuditEvent(models.Model):
    """Who did what to a store's ERP integration, and when."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="erp_audit")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    detail = models.CharField(max_length=500, blank=True)
    detail_i18n = models.JSONField(null=True, blank=True, editable=False)  # erp/stored_text.py

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action}"


class ScheduleKind(models.TextChoices):
    OFF = "off", gettext_lazy("Desactivadas")
    EVERY = "every", gettext_lazy("Cada cierto tiempo")
    DAILY = "daily", gettext_lazy("Todos los días a una hora")


class Schedule(models.Model):
    """When a store's updates run on their own (issue #10), and how the last went.

    The clock (erp/schedule.py) claims a due store by moving `next_run_at` with a
    conditional UPDATE, so two scheduler processes never start two runs for it.
    `next_run_at` is None while the schedule is off or paused: the due query
    never sees those stores.
    """

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="erp_schedule")
    kind = models.CharField(max_length=8, choices=ScheduleKind.choices, default=ScheduleKind.OFF)
    # For EVERY: 15, 30, 60, 360 or 1440 (erp/schedule.py EVERY_CHOICES).
    every_minutes = models.PositiveIntegerField(null=True, blank=True)
    # For DAILY: the time of day in the store's time zone.
    daily_at = models.TimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Scheduled runs that failed in a row (reset by a success): the backoff's exponent.
    failures = models.PositiveIntegerField(default=0)
    # Set when a scheduled run failed in a way only the admin can fix (a wrong
    # password, say): no run starts until the settings are saved again.
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_code = models.CharField(max_length=64, blank=True)
    paused_reason = models.TextField(blank=True)
    last_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Schedule {self.store} {self.kind}"

    @property
    def is_on(self) -> bool:
        return self.kind != ScheduleKind.OFF

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class HostPace(models.Model):
    """The shared request pacing of one ERP host (scheme://host:port), see erp/pacing.py.

    `next_slot` is the earliest moment (seconds since the epoch, on the database's
    clock, so that workers on several machines agree) at which the next request to
    this host may start; each request claims its slot with one conditional UPDATE.
    """

    host = models.CharField(max_length=300, unique=True)
    next_slot = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return self.host


class HostLease(models.Model):
    """One of the N concurrent-run places of an ERP host (erp/pacing.py).

    A holder keeps its place by renewing `expires_at` (database clock, seconds since
    the epoch); a holder that died simply stops renewing, and its place is free
    again once it expires.
    """

    host = models.CharField(max_length=300)
    slot = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=100, blank=True, default="")
    expires_at = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "slot"], name="erp_hostlease_host_slot")
        ]

    def __str__(self) -> str:
        return f"{self.host} #{self.slot}"


class PlannedPage(models.Model):
    """One page of a run's plan: what the run will write (or would have written).

    An update first plans (reads the ERP, writes nothing to the catalog), then
    applies the plan. One row per ERP page keeps planning writes cheap and its
    memory flat. `changes` is a list of
    `[item_id, sku, old_stock, new_stock|None, old_price, new_price|None, code]`:
    the old values are the store's when the page was planned (prices as strings,
    Decimal-exact); None means the run leaves that field as it is.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="planned_pages")
    seq = models.PositiveIntegerField()
    changes = models.JSONField(default=list)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["run", "seq"], name="planned_page_run_seq"),
        ]

    def __str__(self) -> str:
        return f"Plan {self.run_id}/{self.seq} ({len(self.changes)})"


class GuardRails(models.Model):
    """A store's guard rails (issue #11): when an update looks wrong, it is held
    for a person to apply or discard instead of being written.

    Without a row a store has the defaults (`GuardRails.for_store`).
    """

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="erp_guard_rails")
    # (a) Many items going from stock > 0 to 0.
    zero_stock_on = models.BooleanField("stock a 0", default=True)
    zero_stock_percent = models.PositiveSmallIntegerField(
        "porcentaje de ítems que quedan sin stock", default=20
    )
    zero_stock_min = models.PositiveIntegerField("mínimo de ítems", default=50)
    # (b) Many prices dropping by more than half or rising more than tenfold.
    price_on = models.BooleanField("saltos de precio", default=True)
    price_percent = models.PositiveSmallIntegerField("porcentaje de precios con saltos", default=20)
    price_min = models.PositiveIntegerField("mínimo de precios", default=20)
    # (c) A full update receiving far fewer items than the last complete one.
    full_drop_on = models.BooleanField("actualización completa incompleta", default=True)
    full_drop_percent = models.PositiveSmallIntegerField(
        "porcentaje mínimo de ítems de la última completa", default=60
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Controles de {self.store}"

    @classmethod
    def for_store(cls, store: Store) -> "GuardRails":
        """The store's settings, or the defaults (unsaved) when it has none."""
        return cls.objects.filter(store=store).first() or cls(store=store)
