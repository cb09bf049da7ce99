"""`{% schedule_card %}`: the ERP page's card of scheduled updates (erp/_schedule.html)."""

from typing import Any

from django import template

from erp import schedule as schedules
from erp.schedule_views import ScheduleForm

register = template.Library()


@register.inclusion_tag("erp/_schedule.html", takes_context=True)
def schedule_card(context: template.Context) -> dict[str, Any]:
    store = context["store"]
    schedule = schedules.schedule_of(store)
    return {
        "store": store,
        "csrf_token": context.get("csrf_token"),
        "schedule": schedule,
        "schedule_text": schedules.describe(schedule),
        "pause_advice": schedules.pause_advice(schedule) if schedule and schedule.is_paused else "",
        "form": ScheduleForm.for_schedule(schedule),
    }
