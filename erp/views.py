"""The store admin's pages of the ERP integration (issue #3).

Every view is a `store_view`: the store comes from the URL and is checked against
the user's memberships, and every run is looked up within that store, so another
store's slug or run id answers 404. Dates are shown in the store's time zone.
No view puts the stored password in a context, a message or a log line.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from catalog.models import ItemChange
from erp import actions, health, held_views, registry, reports, run_rows, schedule, stored_text
from erp.engine import NotConnected, UpdateAlreadyRunning, expire_stale_runs
from erp.forms import ConnectionForm, UpdateForm, ca_summaries
from erp.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    AuditEvent,
    Connection,
    IssueKind,
    Run,
    RunIssue,
    RunMode,
    RunStatus,
)
from erp.progress import live_announcement
from erp.run_rows import of_run
from erp.secrets import SecretUnreadable
from erp.templatetags.erp_tags import COUNT_LABELS
from erp.undo import UndoRefused, request_undo
from stores.access import store_view
from stores.models import Store
from vxm import spreadsheets
from vxm.retention import history_pruned, retention_days

PAGE_SIZE = 50
RUNS_PER_PAGE = 25
AUDIT_SHOWN = 10
RECENT_RUNS_SHOWN = 5


def _render(
    request: HttpRequest,
    store: Store,
    template: str,
    context: dict[str, Any],
    status: int = 200,
) -> HttpResponse:
    # Rendered inside the store's time zone, so every date reads as the store's
    # local time whatever the server's.
    with timezone.override(store.tz):
        return render(request, template, {"store": store, "nav": "erp", **context}, status=status)


def _integrations_url(store: Store) -> str:
    return reverse("erp:integrations", args=[store.slug])


# ---- Integrations > ERP -------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionState:
    """What the integrations page says about the store's connection: whether its
    saved settings work, as far as anyone last found out."""

    level: str  # "unknown", "ok" or "attention"
    label: str
    message: str = ""
    advice: str = ""  # what to do about it
    checked_at: datetime | None = None  # when that was found out
    source: str = ""  # by what: "run", "verification" or "saved"
    last_run: Run | None = None  # the last finished update, whatever it said


CHECK_AGAIN = gettext_lazy("Cuando lo corrijas, probá de nuevo con «Verificar conexión».")


def connection_state(store: Store, connection: Connection) -> ConnectionState:
    """The newest of the last verification, the settings being saved and the last
    finished update decides: a failed verification after a good update says the
    connection fails now, and new settings are untried whatever came before."""
    try:
        connection.get_password()
    except SecretUnreadable:
        return ConnectionState(
            "attention",
            gettext("Necesita atención"),
            gettext(
                "La contraseña guardada no se puede leer (cambió la clave de cifrado del "
                "servidor). Volvé a escribirla en la configuración."
            ),
        )
    except ImproperlyConfigured:
        return ConnectionState(
            "attention",
            gettext("Necesita atención"),
            gettext(
                "El servidor no tiene configurada la clave de cifrado de contraseñas: avisale "
                "al equipo técnico de VentasxMayor."
            ),
        )
    last = (
        Run.objects.filter(store=store, status__in=FINISHED_STATUSES)
        # An undo never talks to the ERP: it says nothing about the settings.
        .exclude(mode=RunMode.UNDO)
        .select_related("requested_by")
        .first()
    )
    checked = connection.last_check_at
    ran_at = last.finished_at if last is not None else None
    if last is not None and ran_at is not None and (checked is None or ran_at > checked):
        if last.status == RunStatus.FAILED:
            return ConnectionState(
                "attention",
                gettext("Necesita atención"),
                stored_text.run_error(last),
                str(CHECK_AGAIN),
                ran_at,
                "run",
                last,
            )
        return ConnectionState(
            "ok", gettext("Conectado"), checked_at=ran_at, source="run", last_run=last
        )
    if checked is None or connection.last_check_ok is None:
        return ConnectionState(
            "unknown",
            gettext("Sin verificar"),
            gettext("Esta configuración todavía no se probó."),
            gettext("Probala con «Verificar conexión»: no cambia nada de la tienda."),
            checked,
            "saved" if checked else "",
            last,
        )
    if not connection.last_check_ok:
        return ConnectionState(
            "attention",
            gettext("Verificación fallida"),
            stored_text.check_message(connection),
            str(CHECK_AGAIN),
            checked,
            "verification",
            last,
        )
    return ConnectionState(
        "ok",
        gettext("Conectado"),
        stored_text.check_message(connection),
        checked_at=checked,
        source="verification",
        last_run=last,
    )


def _status_run(store: Store) -> Run | None:
    """The run the status box follows: the one in progress, else the latest."""
    runs = Run.objects.filter(store=store).select_related("requested_by")
    return runs.filter(status__in=ACTIVE_STATUSES).first() or runs.first()


@store_view
@require_safe
def integrations(request: HttpRequest, store: Store) -> HttpResponse:
    expire_stale_runs(store)
    plan = schedule.schedule_of(store)
    next_update = plan.next_run_at if plan is not None and not plan.is_paused else None
    return _render(
        request,
        store,
        "erp/integrations.html",
        {
            **_history_parts(store),
            "health": health.health(store, next_update=next_update),
            "status_run": _status_run(store),
            "audit_events": AuditEvent.objects.filter(store=store).select_related("user")[
                :AUDIT_SHOWN
            ],
        },
    )


def _history_parts(store: Store) -> dict[str, Any]:
    """The provider cards, the Verify and Update buttons and the recent runs of
    the integrations page: rendered with the page, and again by the status answer
    that replaces them out of band once the run it followed has finished."""
    connection = Connection.objects.filter(store=store).first()
    return {
        "cards": [
            {
                "provider": provider,
                "connection": connection if connection and connection.kind == kind else None,
            }
            for kind, provider in registry.providers().items()
        ],
        "connection": connection,
        "state": connection_state(store, connection) if connection is not None else None,
        "recent_runs": Run.objects.filter(store=store).select_related("requested_by")[
            :RECENT_RUNS_SHOWN
        ],
        "update_form": UpdateForm(),
    }


def _finished_run_parts(store: Store) -> dict[str, Any]:
    # Nothing without a connection: the page then polls no status.
    parts = _history_parts(store)
    return {"oob": True, **parts} if parts["connection"] is not None else {}


@store_view
@require_safe
def status(request: HttpRequest, store: Store) -> HttpResponse:
    """The run status box alone, which htmx polls while a run is queued or running.

    Once the run has finished the box comes back without its polling trigger,
    so htmx stops asking, and that last answer brings the rest of the page up to
    date without a reload: on the integrations page the provider card and the
    recent runs come along as out-of-band swaps (and the stale "pedida" message
    goes). A run's page polls with `?run=<id>`: the box follows that run, and
    once it finished htmx is told to reload the page (HX-Refresh), since all of
    that page is about the run.
    """
    if not request.headers.get("HX-Request"):
        # Only htmx asks for the bare box; a person who lands here gets the page.
        return redirect(_integrations_url(store))
    expire_stale_runs(store)
    run_id = _int_param(request, "run")
    said = request.GET.get("said")
    if run_id is not None:
        followed = _store_run(store, run_id)
        response = _render(
            request,
            store,
            "erp/_status.html",
            {
                "status_run": followed,
                "follow_run": True,
                "live": live_announcement(followed, said),
            },
        )
        if not followed.is_active:
            response["HX-Refresh"] = "true"
        return response
    run = _status_run(store)
    context: dict[str, Any] = {"status_run": run, "live": live_announcement(run, said)}
    if run is not None and not run.is_active:
        context.update(_finished_run_parts(store))
    return _render(request, store, "erp/_status_poll.html", context)


# ---- Settings, verify, update ------------------------------------------------------


@store_view
@require_http_methods(["GET", "POST"])
# An error report of this request (Django's debug page, error e-mails) must not
# carry the password typed in the form.
@sensitive_post_parameters("password")
def connection_settings(request: HttpRequest, store: Store, kind: str) -> HttpResponse:
    provider = registry.providers().get(kind)
    if provider is None:
        raise Http404(gettext("No existe ese ERP."))
    connection = Connection.objects.filter(store=store).first()
    if request.method == "POST":
        form = ConnectionForm(request.POST, request.FILES, kind=kind, connection=connection)
        if form.is_valid():
            try:
                actions.save_settings(store, **form.settings(), user=request.user)
            except actions.ServerChangeWhileRunning as e:
                form.add_error("url", str(e))
            else:
                messages.success(
                    request,
                    gettext("Configuración guardada. Probala con «Verificar conexión»."),
                )
                return redirect(_integrations_url(store))
    else:
        form = ConnectionForm(kind=kind, connection=connection)
    replaces = None
    if connection is not None and connection.kind != kind:
        other = registry.providers().get(connection.kind)
        replaces = other.name if other else connection.kind
    return _render(
        request,
        store,
        "erp/settings.html",
        {
            "provider": provider,
            "form": form,
            "connection": connection,
            "replaces": replaces,
            "ca_certs": ca_summaries(connection.ca_cert_pem) if connection is not None else [],
        },
    )


@store_view
@require_POST
def verify(request: HttpRequest, store: Store) -> HttpResponse:
    try:
        outcome = actions.verify_connection(store, user=request.user, panel=True)
    except actions.PanelLimitReached as e:
        messages.warning(request, e.message)
        return redirect(_integrations_url(store))
    if outcome.ok:
        messages.success(request, outcome.shown)
    else:
        messages.error(
            request, gettext("La verificación falló. %(message)s") % {"message": outcome.shown}
        )
    return redirect(_integrations_url(store))


@store_view
@require_POST
def update(request: HttpRequest, store: Store) -> HttpResponse:
    form = UpdateForm(request.POST)
    full = form.is_valid() and form.cleaned_data["full"]
    try:
        run = actions.start_update(store, user=request.user, full=full, origin="panel")
    except actions.PanelLimitReached as e:
        messages.warning(request, e.message)
    except UpdateAlreadyRunning as e:
        messages.warning(
            request,
            format_html(
                gettext(
                    'Ya hay una actualización en curso (<a href="{}">#{}</a>): no se empezó otra. '
                    "Cuando termine podés pedir una nueva."
                ),
                reverse("erp:run", args=[store.slug, e.run.pk]),
                e.run.pk,
            ),
        )
    except NotConnected:
        messages.error(request, gettext("Primero configurá el ERP de la tienda."))
    else:
        messages.success(
            request,
            (
                gettext(
                    "Actualización #%(pk)s pedida (completa). Corre en segundo plano: "
                    "podés salir de esta página."
                )
                if full
                else gettext(
                    "Actualización #%(pk)s pedida. Corre en segundo plano: "
                    "podés salir de esta página."
                )
            )
            % {"pk": run.pk},
        )
    return redirect(_integrations_url(store))


# ---- History and a run's page ----------------------------------------------------


@store_view
@require_safe
def runs(request: HttpRequest, store: Store) -> HttpResponse:
    expire_stale_runs(store)
    paginator = Paginator(
        Run.objects.filter(store=store).select_related("requested_by"), RUNS_PER_PAGE
    )
    page = paginator.get_page(request.GET.get("page"))
    return _render(request, store, "erp/runs.html", {"page": page})


@dataclass(frozen=True)
class KeysetPage:
    """One page of rows ordered by id, paged by id instead of by offset, so the
    last page of 300,000 rows costs what the first does."""

    rows: list[Any]
    prev_before: int | None  # pass as `before` for the previous page
    next_after: int | None  # pass as `after` for the next page


def _int_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    # isascii: "²".isdigit() is True but int("²") fails.
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def keyset_page(
    queryset: "QuerySet[Any]",
    *,
    after: int | None,
    before: int | None,
    size: int | None = None,
    leading: tuple[str, ...] = (),
) -> KeysetPage:
    """`leading`: fields the queryset holds to one value, put first in the ORDER BY
    (no change of order) so that the index starting with them serves it: see
    `erp.run_rows.of_run`."""
    size = size or PAGE_SIZE
    backward = [f"-{name}" for name in leading]
    if before is not None:
        rows: list[Model] = list(
            queryset.filter(pk__lt=before).order_by(*backward, "-pk")[: size + 1]
        )
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        return KeysetPage(
            rows,
            prev_before=rows[0].pk if more_before and rows else None,
            next_after=rows[-1].pk if rows else None,
        )
    if after is not None:
        queryset = queryset.filter(pk__gt=after)
    rows = list(queryset.order_by(*leading, "pk")[: size + 1])
    more_after = len(rows) > size
    rows = rows[:size]
    return KeysetPage(
        rows,
        prev_before=rows[0].pk if after is not None and rows else None,
        next_after=rows[-1].pk if more_after else None,
    )


def _store_run(store: Store, run_id: int) -> Run:
    return get_object_or_404(
        Run.objects.select_related("requested_by", "store"), pk=run_id, store=store
    )


@store_view
@require_safe
def run_detail(request: HttpRequest, store: Store, run_id: int) -> HttpResponse:
    expire_stale_runs(store)
    run = _store_run(store, run_id)
    changes = keyset_page(
        of_run(ItemChange.objects, run)
        .select_related("item")
        .only(
            "id",
            "at",
            "old_stock",
            "new_stock",
            "old_price",
            "new_price",
            "item__sku",
            "item__name",
        ),
        after=_int_param(request, "c_after"),
        before=_int_param(request, "c_before"),
        leading=run_rows.ORDER[:1],
    )
    if held_views.shows_plan(run):
        # Nothing was written: the table lists what would be (issue #11).
        changes = held_views.planned_changes(
            run,
            after=_int_param(request, "c_after"),
            before=_int_param(request, "c_before"),
            size=PAGE_SIZE,
        )
    kind = request.GET.get("kind", "")
    if kind not in IssueKind.values:
        kind = ""
    issues_qs = of_run(RunIssue.objects, run)
    if kind:
        issues_qs = issues_qs.filter(kind=kind)
    issues = keyset_page(
        issues_qs,
        after=_int_param(request, "i_after"),
        before=_int_param(request, "i_before"),
        leading=run_rows.ORDER[:1],
    )
    # One count per kind, the run's own, under the label the counts above use:
    # a chip says what its count says. Each kind counts ERP items, one report
    # row each, except an ambiguous code, which has a row per store SKU it
    # matches; the page says so, with that number of rows.
    labels = dict(COUNT_LABELS)
    issue_kinds = [(value, labels[value], getattr(run, value)) for value in IssueKind.values]
    ambiguous_rows = (
        RunIssue.objects.filter(run=run, kind=IssueKind.AMBIGUOUS).count()
        if run.ambiguous and kind in ("", IssueKind.AMBIGUOUS)
        else 0
    )
    return _render(
        request,
        store,
        "erp/run.html",
        {
            "run": run,
            "changes": changes,
            "issues": issues,
            "kind": kind,
            "kind_label": labels[kind] if kind else "",
            "issue_kinds": issue_kinds,
            "issue_total": sum(count for _, _, count in issue_kinds),
            "ambiguous_rows": ambiguous_rows,
            "status_run": run if run.is_active else None,
            # Its changes may be gone from the history by age (vxm/retention.py).
            "history_pruned": history_pruned(run),
            "retention_days": retention_days(),
        },
    )


@store_view
@require_safe
def run_changes_report(
    request: HttpRequest, store: Store, run_id: int, fmt: str
) -> StreamingHttpResponse | FileResponse:
    """The run's changes as `fmt` ("csv" or "xlsx", from the URL)."""
    run = _store_run(store, run_id)
    locale = spreadsheets.report_locale()
    rows = reports.change_rows(run)
    name = f"actualizacion-{run.pk}-cambios.{fmt}"
    if fmt == "xlsx":
        return spreadsheets.xlsx_response(
            reports.CHANGES_COLUMNS, rows, store.tz, locale, gettext("Cambios"), name
        )
    return spreadsheets.csv_response(reports.CHANGES_COLUMNS, rows, store.tz, locale, name)


@store_view
@require_safe
def run_issues_report(
    request: HttpRequest, store: Store, run_id: int, fmt: str
) -> StreamingHttpResponse | FileResponse:
    """The run's issues (of one kind with ?kind=) as `fmt` ("csv" or "xlsx")."""
    run = _store_run(store, run_id)
    kind = request.GET.get("kind", "")
    if kind not in IssueKind.values:
        kind = ""
    suffix = f"-{kind}" if kind else ""
    locale = spreadsheets.report_locale()
    rows = reports.issue_rows(run, kind or None)
    name = f"actualizacion-{run.pk}-no-aplicados{suffix}.{fmt}"
    if fmt == "xlsx":
        return spreadsheets.xlsx_response(
            reports.ISSUES_COLUMNS, rows, store.tz, locale, gettext("No aplicados"), name
        )
    return spreadsheets.csv_response(reports.ISSUES_COLUMNS, rows, store.tz, locale, name)


# ---- Undo an update (issue #11; the logic is in erp/undo.py) ------------------------


@store_view
@require_POST
def run_undo(request: HttpRequest, store: Store, run_id: int) -> HttpResponse:
    run = _store_run(store, run_id)
    try:
        undo = request_undo(store, run.pk, user=request.user, origin="panel")
    except UndoRefused as e:
        messages.error(request, e.message)
        return redirect(reverse("erp:run", args=[store.slug, run.pk]))
    messages.success(
        request,
        _(
            "Deshaciendo la actualización #%(run)s: corre en segundo plano, podés salir "
            "de esta página."
        )
        % {"run": run.pk},
    )
    return redirect(reverse("erp:run", args=[store.slug, undo.pk]))
