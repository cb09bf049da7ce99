"""Template tags of issue #11's partials (held runs, guard rails)."""

from typing import Any

from django import template

from erp.models import GuardRails, Run, RunStatus
from stores.models import Store

register = template.Library()


@register.simple_tag
def held_runs(store: Store) -> list[Run]:
    """The store's held runs, newest first (a few: each one waits for a decision)."""
    return list(Run.objects.filter(store=store, status=RunStatus.HELD).order_by("-pk")[:5])


@register.simple_tag
def guard_rails_form(store: Store) -> Any:
    from erp.held_views import GuardRailsForm

    return GuardRailsForm(instance=GuardRails.for_store(store))
