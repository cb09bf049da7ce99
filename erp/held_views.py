"""The panel's side of issue #11: preview an update, apply or discard a held one,
change the store's guard rails; and the planned changes of a preview or held run,
paged like the applied ones (`views.keyset_page`'s KeysetPage)."""

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from catalog.models import Item
from erp import actions
from erp.engine import NotConnected, NotHeld, UpdateAlreadyRunning, apply_held, discard_held
from erp.forms import UpdateForm
from erp.held_cli import save_guard_rails
from erp.models import GuardRails, PlannedPage, Run, RunMode, RunStatus
from stores.access import store_view
from stores.models import Store

# Positions in a plan: page seq and index within it, as one integer for the pager.
_SPAN = 1_000_000


def shows_plan(run: Run) -> bool:
    """Whether the run's page lists its plan rather than its (absent) history."""
    return run.mode == RunMode.PREVIEW or run.status in (RunStatus.HELD, RunStatus.DISCARDED)


def planned_changes(run: Run, *, after: int | None, before: int | None, size: int) -> Any:
    """One page of a run's planned changes, shaped like ItemChange rows for the
    run page's table, paged by position (seq * 1e6 + index)."""
    from erp.views import KeysetPage

    rows: list[tuple[int, list[Any]]] = []
    if before is not None:
        seq, index = divmod(before, _SPAN)
        pages = PlannedPage.objects.filter(run=run, seq__lte=seq).order_by("-seq")
        for page in pages.iterator(chunk_size=4):
            changes = page.changes[:index] if page.seq == seq else page.changes
            for i in range(len(changes) - 1, -1, -1):
                rows.append((page.seq * _SPAN + i, changes[i]))
            if len(rows) > size:
                break
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        prev_before = rows[0][0] if more_before and rows else None
        next_after = rows[-1][0] if rows else None
    else:
        seq, index = divmod(after + 1, _SPAN) if after is not None else (0, 0)
        pages = PlannedPage.objects.filter(run=run, seq__gte=seq).order_by("seq")
        for page in pages.iterator(chunk_size=4):
            start = index if page.seq == seq else 0
            for i in range(start, len(page.changes)):
                rows.append((page.seq * _SPAN + i, page.changes[i]))
            if len(rows) > size:
                break
        more_after = len(rows) > size
        rows = rows[:size]
        prev_before = rows[0][0] if after is not None and rows else None
        next_after = rows[-1][0] if more_after else None
    names = dict(
        Item.objects.filter(pk__in=[c[0] for _, c in rows]).order_by().values_list("id", "name")
    )
    shown = [
        SimpleNamespace(
            item_id=c[0],
            item=SimpleNamespace(sku=c[1], name=names.get(c[0], "")),
            old_stock=c[2],
            new_stock=c[3],
            old_price=Decimal(c[4]),
            new_price=None if c[5] is None else Decimal(c[5]),
        )
        for _, c in rows
    ]
    return KeysetPage(shown, prev_before=prev_before, next_after=next_after)


def _integrations(store: Store) -> str:
    return reverse("erp:integrations", args=[store.slug])


def _run_url(store: Store, run_id: int) -> str:
    return reverse("erp:run", args=[store.slug, run_id])


@store_view
@require_POST
def preview(request: HttpRequest, store: Store) -> HttpResponse:
    form = UpdateForm(request.POST)
    full = form.is_valid() and form.cleaned_data["full"]
    try:
        run = actions.start_update(
            store, user=request.user, full=full, origin="panel", mode=RunMode.PREVIEW
        )
    except actions.PanelLimitReached as e:
        messages.warning(request, e.message)
    except UpdateAlreadyRunning as e:
        messages.warning(
            request,
            format_html(
                _(
                    'Ya hay una actualización en curso (<a href="{}">#{}</a>). Cuando termine '
                    "podés pedir la vista previa."
                ),
                _run_url(store, e.run.pk),
                e.run.pk,
            ),
        )
    except NotConnected:
        messages.error(request, _("Primero configurá el ERP de la tienda."))
    else:
        messages.success(
            request,
            format_html(
                _(
                    'Vista previa <a href="{}">#{}</a> pedida: lee el ERP y no cambia nada. '
                    "Cuando termine, abrila para ver qué cambiaría."
                ),
                _run_url(store, run.pk),
                run.pk,
            ),
        )
    return redirect(_integrations(store))


@store_view
@require_POST
def run_apply(request: HttpRequest, store: Store, run_id: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=run_id, store=store)
    try:
        apply_held(run, user=request.user, origin="panel")
    except NotHeld as e:
        messages.warning(request, str(e))
    except UpdateAlreadyRunning as e:
        messages.warning(
            request,
            _(
                "Hay otra actualización en curso (#%(id)s): esperá a que termine y "
                "aplicá esta de nuevo."
            )
            % {"id": e.run.pk},
        )
    else:
        messages.success(
            request,
            _(
                "Se está aplicando la actualización #%(id)s. Los productos que cambiaste en la "
                "tienda mientras tanto quedan como están y se listan abajo."
            )
            % {"id": run.pk},
        )
    return redirect(_run_url(store, run.pk))


@store_view
@require_POST
def run_discard(request: HttpRequest, store: Store, run_id: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=run_id, store=store)
    try:
        discard_held(run, user=request.user, origin="panel")
    except NotHeld as e:
        messages.warning(request, str(e))
    else:
        messages.success(
            request,
            _(
                "Actualización #%(id)s descartada: no se cambió nada. La próxima actualización "
                "vuelve a leer esos cambios del ERP."
            )
            % {"id": run.pk},
        )
    return redirect(_run_url(store, run.pk))


class GuardRailsForm(forms.ModelForm):
    class Meta:
        model = GuardRails
        fields = [
            "zero_stock_on",
            "zero_stock_percent",
            "zero_stock_min",
            "price_on",
            "price_percent",
            "price_min",
            "full_drop_on",
            "full_drop_percent",
        ]
        labels = {
            "zero_stock_on": gettext_lazy("Retener si muchos ítems quedan con stock 0"),
            "zero_stock_percent": gettext_lazy("Porcentaje de ítems de la tienda"),
            "zero_stock_min": gettext_lazy("Y al menos (ítems)"),
            "price_on": gettext_lazy(
                "Retener si muchos precios bajan más de la mitad o suben más de diez veces"
            ),
            "price_percent": gettext_lazy("Porcentaje de los precios que cambian"),
            "price_min": gettext_lazy("Y al menos (precios)"),
            "full_drop_on": gettext_lazy(
                "Retener una actualización completa que trae muchos menos ítems que la anterior"
            ),
            "full_drop_percent": gettext_lazy("Mínimo, en % de los ítems de la última completa"),
        }
        widgets = {
            name: forms.NumberInput(attrs={"min": 1, "max": 100, "inputmode": "numeric"})
            for name in ("zero_stock_percent", "price_percent", "full_drop_percent")
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("zero_stock_percent", "price_percent", "full_drop_percent"):
            value = data.get(name)
            if value is not None and not 1 <= value <= 100:
                self.add_error(name, _("Tiene que ser un porcentaje entre 1 y 100."))
        for name in ("zero_stock_min", "price_min"):
            value = data.get(name)
            if value is not None and value < 1:
                self.add_error(name, _("Tiene que ser al menos 1."))
        return data


@store_view
@require_POST
def guards(request: HttpRequest, store: Store) -> HttpResponse:
    form = GuardRailsForm(request.POST, instance=GuardRails.for_store(store))
    if not form.is_valid():
        problems = "; ".join(
            f"{form.fields[name].label}: {' '.join(str(e) for e in errors)}"
            for name, errors in form.errors.items()
        )
        messages.error(
            request,
            _("No se guardaron los controles: %(problems)s Corregilo y guardá de nuevo.")
            % {"problems": problems},
        )
    else:
        save_guard_rails(
            store, {name: form.cleaned_data[name] for name in form.Meta.fields}, user=request.user
        )
        messages.success(request, _("Controles de seguridad guardados."))
    return redirect(_integrations(store) + "#controles")
