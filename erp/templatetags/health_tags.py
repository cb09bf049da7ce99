"""How long ago something happened, for the integration's health and the catalog."""

from datetime import datetime

from django import template

from erp import health

register = template.Library()


@register.filter
def ago(value: datetime | None) -> str:
    """{{ run.finished_at|ago }} → "hace 12 minutos"."""
    return "" if value is None else health.ago(value)
