"""Presentation of runs: durations, who started them, their counts in words."""

from datetime import timedelta

from django import template

from catalog.templatetags.money import thousands
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
    # ERP codes that are several store SKUs once case and spaces are ignored;
    # each has one report row per store SKU (the run page says so).
    ("ambiguous", "Códigos ambiguos"),
    ("invalid", "Ítems inválidos"),
    ("price_rejected", "Precios no aplicados"),
    ("discontinued", "Discontinuados"),
    # Matched items locked in the store: left as they were (catalog.Item.erp_locked).
    ("locked", "Bloqueados en la tienda"),
    # A held run applied later left these alone: the store changed them meanwhile.
    ("changed_meanwhile", "Cambiados en la tienda mientras tanto"),
)

# How the status box words each count, singular and plural. The first four are
# always shown (a 0 there is news); the rest only when they are not 0.
SUMMARY_WORDS = (
    ("received", "recibido", "recibidos"),
    ("matched", "encontrado en la tienda", "encontrados en la tienda"),
    ("stock_changed", "con stock cambiado", "con stock cambiado"),
    ("price_changed", "con precio cambiado", "con precio cambiado"),
    ("unchanged", "sin cambios", "sin cambios"),
    ("unmatched", "código sin producto en la tienda", "códigos sin producto en la tienda"),
    ("ambiguous", "código ambiguo", "códigos ambiguos"),
    ("invalid", "inválido", "inválidos"),
    ("price_rejected", "precio no aplicado", "precios no aplicados"),
    ("discontinued", "discontinuado", "discontinuados"),
    ("locked", "bloqueado en la tienda", "bloqueados en la tienda"),
    (
        "changed_meanwhile",
        "cambiado en la tienda mientras tanto",
        "cambiados en la tienda mientras tanto",
    ),
)
SUMMARY_ALWAYS = 4


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


@register.filter
def run_summary(run: Run) -> list[str]:
    """["6 recibidos", "6 encontrados en la tienda", ...]: the counts of a finished
    run in words, the first four always, the others only when not 0."""
    parts = []
    for position, (name, singular, plural) in enumerate(SUMMARY_WORDS):
        value = getattr(run, name)
        if value or position < SUMMARY_ALWAYS:
            parts.append(f"{thousands(value)} {singular if value == 1 else plural}")
    return parts
