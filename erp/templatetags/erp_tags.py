"""Presentation of runs: durations, who started them, their counts in words."""

from datetime import timedelta

from django import template

from erp.actions import requested_by_label
from erp.models import Run

register = template.Library()

# The counts a store admin reads, in the order the issue lists them. Transport
# details (pages, requests, retries...) are deliberately not here.
COUNT_LABELS = (
    ("received", "Ítems recibidos"),
    ("matched", "Encontrados en la tienda"),
    ("stock_changed", "Stock cambiado"),
    ("price_changed", "Precio cambiado"),
    ("unchanged", "Sin cambios"),
    ("unmatched", "Códigos sin producto en la tienda"),
    ("ambiguous", "SKU ambiguos"),
    ("invalid", "Ítems inválidos"),
    ("price_rejected", "Precios no aplicados"),
    ("discontinued", "Discontinuados"),
)


@register.filter
def duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    if seconds < 1:
        return "menos de 1 s"
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


@register.filter
def started_by(run: Run) -> str:
    return requested_by_label(run)


@register.filter
def run_counts(run: Run) -> list[tuple[str, str, int]]:
    """(field, label, value) of every count an admin reads."""
    return [(name, label, getattr(run, name)) for name, label in COUNT_LABELS]


@register.simple_tag
def count_labels() -> tuple[tuple[str, str], ...]:
    return COUNT_LABELS
