"""The undo box of a run's page (erp/_undo.html): what an undo run undid and did,
who undid an update, or the button to undo it. One tag, so the run page needs one
line and its view nothing more."""

from typing import Any

from django import template

from erp.models import Run, RunMode
from erp.undo import NOTHING_IN_ERP, items_changed, refusal, successful_undo

register = template.Library()


@register.inclusion_tag("erp/_undo.html", takes_context=True)
def undo_box(context: template.Context, run: Run) -> dict[str, Any]:
    parts: dict[str, Any] = {
        "run": run,
        "store": context["store"],
        "csrf_token": context.get("csrf_token"),
        "nothing_in_erp": NOTHING_IN_ERP,
    }
    if run.mode == RunMode.UNDO:
        parts["is_undo"] = True
        parts["restored"] = run.matched - run.unchanged - run.changed_meanwhile
        return parts
    if run.mode != RunMode.UPDATE or run.is_active:
        return parts
    parts["undone_by"] = successful_undo(run)
    if parts["undone_by"] is None:
        why = refusal(run)
        parts["refusal"] = why
        if not why:
            parts["undoable"] = True
            parts["items"] = items_changed(run)
    return parts
