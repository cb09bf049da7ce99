"""Presentation of runs: durations, who started them, their counts in words."""

from collections.abc import Callable
from datetime import timedelta

from django import template
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from catalog.templatetags.money import thousands
from erp import stored_text
from erp.actions import requested_by_label
from erp.models import Run

register = template.Library()

# The counts a store admin reads, in the order the issue lists them. Transport
# details (pages, requests, retries...) are deliberately not here.
COUNT_LABELS = (
    ("received", _("Ítems recibidos")),
    ("matched", _("Encontrados en la tienda")),
    ("stock_changed", _("Stock cambiado")),
    ("price_changed", _("Precio cambiado")),
    ("unchanged", _("Sin cambios")),
    ("unmatched", _("Códigos sin producto en la tienda")),
    # ERP codes that are several store SKUs once case and spaces are ignored;
    # each has one report row per store SKU (the run page says so).
    ("ambiguous", _("Códigos ambiguos")),
    ("invalid", _("Ítems inválidos")),
    ("price_rejected", _("Precios no aplicados")),
    ("discontinued", _("Discontinuados")),
    # Matched items locked in the store: left as they were (catalog.Item.erp_locked).
    ("locked", _("Bloqueados en la tienda")),
    # A held run applied later left these alone: the store changed them meanwhile.
    ("changed_meanwhile", _("Cambiados en la tienda mientras tanto")),
)

# How the status box words each count: a function of the number, translated when
# called (the plural form depends on the number, in each language its own way). The first four are
# always shown (a 0 there is news); the rest only when they are not 0.
SUMMARY_WORDS: tuple[tuple[str, Callable[[int], str]], ...] = (
    ("received", lambda n: ngettext("%(count)s recibido", "%(count)s recibidos", n)),
    (
        "matched",
        lambda n: ngettext(
            "%(count)s encontrado en la tienda", "%(count)s encontrados en la tienda", n
        ),
    ),
    (
        "stock_changed",
        lambda n: ngettext("%(count)s con stock cambiado", "%(count)s con stock cambiado", n),
    ),
    (
        "price_changed",
        lambda n: ngettext("%(count)s con precio cambiado", "%(count)s con precio cambiado", n),
    ),
    ("unchanged", lambda n: ngettext("%(count)s sin cambios", "%(count)s sin cambios", n)),
    (
        "unmatched",
        lambda n: ngettext(
            "%(count)s código sin producto en la tienda",
            "%(count)s códigos sin producto en la tienda",
            n,
        ),
    ),
    ("ambiguous", lambda n: ngettext("%(count)s código ambiguo", "%(count)s códigos ambiguos", n)),
    ("invalid", lambda n: ngettext("%(count)s inválido", "%(count)s inválidos", n)),
    (
        "price_rejected",
        lambda n: ngettext("%(count)s precio no aplicado", "%(count)s precios no aplicados", n),
    ),
    ("discontinued", lambda n: ngettext("%(count)s discontinuado", "%(count)s discontinuados", n)),
    (
        "locked",
        lambda n: ngettext(
            "%(count)s bloqueado en la tienda", "%(count)s bloqueados en la tienda", n
        ),
    ),
    (
        "changed_meanwhile",
        lambda n: ngettext(
            "%(count)s cambiado en la tienda mientras tanto",
            "%(count)s cambiados en la tienda mientras tanto",
            n,
        ),
    ),
)
SUMMARY_ALWAYS = 4


@register.filter
def duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    if seconds < 1:
        return gettext("menos de 1 s")
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
    return [(name, str(label), getattr(run, name)) for name, label in COUNT_LABELS]


@register.simple_tag
def count_labels() -> list[tuple[str, str]]:
    return [(name, str(label)) for name, label in COUNT_LABELS]


@register.filter
def run_summary(run: Run) -> list[str]:
    """["6 recibidos", "6 encontrados en la tienda", ...]: the counts of a finished
    run in words, the first four always, the others only when not 0."""
    parts = []
    for position, (name, words) in enumerate(SUMMARY_WORDS):
        value = getattr(run, name)
        if value or position < SUMMARY_ALWAYS:
            parts.append(words(value) % {"count": thousands(value)})
    return parts


# Stored texts in the reader's language (erp/stored_text.py).
register.filter("run_error", stored_text.run_error)
register.filter("issue_reason", stored_text.issue_reason)
register.filter("audit_detail", stored_text.audit_detail)
register.filter("check_message", stored_text.check_message)
register.filter("actor_label", stored_text.actor_label)
