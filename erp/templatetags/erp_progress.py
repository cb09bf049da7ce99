"""The live progress of a run and who cancelled it, for erp/_progress.html and
erp/_cancel.html."""

from django import template

from erp import progress
from erp.cancel import cancelled_by_label
from erp.models import Run

register = template.Library()


@register.simple_tag
def run_progress(run: Run) -> progress.RunProgress:
    return progress.progress_of(run)


@register.filter
def cancelled_by(run: Run) -> str:
    return cancelled_by_label(run)
