"""The ERP page's "Actualizaciones automáticas" card: its form and the view that saves it.

The card itself is rendered by the `schedule_card` tag (erp/templatetags/
erp_schedule.py) from the page's template, so the page's own view is unchanged.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from erp import schedule as schedules
from erp.models import Schedule, ScheduleKind
from stores.access import store_view
from stores.models import Store

DAILY = "daily"
FREQUENCY_CHOICES = [
    ("off", gettext_lazy("No, solo cuando las pida")),
    ("15m", gettext_lazy("Cada 15 minutos")),
    ("30m", gettext_lazy("Cada 30 minutos")),
    ("1h", gettext_lazy("Cada hora")),
    ("6h", gettext_lazy("Cada 6 horas")),
    ("24h", gettext_lazy("Cada 24 horas")),
    (DAILY, gettext_lazy("Todos los días a una hora")),
]


class ScheduleForm(forms.Form):
    frequency = forms.ChoiceField(
        label=gettext_lazy("Actualizar automáticamente"), choices=FREQUENCY_CHOICES
    )
    daily_at = forms.TimeField(
        label=gettext_lazy("Hora (de la tienda)"),
        required=False,
        input_formats=["%H:%M"],
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": gettext_lazy("Escribí la hora como HH:MM, por ejemplo 03:30.")},
    )

    @classmethod
    def for_schedule(cls, schedule: Schedule | None) -> "ScheduleForm":
        initial: dict[str, Any] = {"frequency": "off"}
        if schedule is not None and schedule.kind == ScheduleKind.DAILY:
            initial = {"frequency": DAILY, "daily_at": schedule.daily_at}
        elif schedule is not None and schedule.kind == ScheduleKind.EVERY:
            flag = {v: k for k, v in schedules.EVERY_CHOICES.items()}.get(
                schedule.every_minutes or 0, "off"
            )
            initial = {"frequency": flag}
        return cls(initial=initial)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (
            data.get("frequency") == DAILY
            and not data.get("daily_at")
            and "daily_at" not in self.errors
        ):
            self.add_error("daily_at", _("Indicá la hora, por ejemplo 03:00."))
        return data

    def save(self, store: Store, user: Any) -> Schedule:
        frequency = self.cleaned_data["frequency"]
        if frequency == "off":
            return schedules.set_schedule(store, kind=ScheduleKind.OFF, user=user)
        if frequency == DAILY:
            return schedules.set_schedule(
                store, kind=ScheduleKind.DAILY, daily_at=self.cleaned_data["daily_at"], user=user
            )
        return schedules.set_schedule(
            store,
            kind=ScheduleKind.EVERY,
            every_minutes=schedules.EVERY_CHOICES[frequency],
            user=user,
        )


@store_view
@require_POST
def save_schedule(request: HttpRequest, store: Store) -> HttpResponse:
    form = ScheduleForm(request.POST)
    if form.is_valid():
        schedule = form.save(store, request.user)
        if not schedule.is_on:
            messages.success(
                request, _("Listo: las actualizaciones automáticas están desactivadas.")
            )
        elif schedule.is_paused:
            messages.warning(
                request,
                _("Programación guardada, pero está pausada: %(advice)s")
                % {"advice": schedules.pause_advice(schedule)},
            )
        else:
            messages.success(
                request,
                _(
                    "Listo: la tienda se actualiza sola %(schedule)s. La primera actualización "
                    "empieza dentro de un minuto."
                )
                % {"schedule": schedules.describe(schedule)},
            )
    else:
        errors = " ".join(str(error) for errors in form.errors.values() for error in errors)
        messages.error(request, _("No se guardó la programación. %(errors)s") % {"errors": errors})
    return redirect(reverse("erp:integrations", args=[store.slug]) + "#programacion")
