"""Texts stored now and read later, in the reader's language.

A run's error, an issue's reason, an audit detail and the connection's last check
message are written once (by a worker, with no reader yet) and read for months by
people who may have chosen another language. So besides the text itself, the
writer stores the untranslated message and its parameters as JSON in the field's
`*_i18n` twin:

    run.error_message = str(message)          # as before: Spanish, for old readers
    run.error_message_i18n = stored_text.pack(MSG, code=code)

where MSG is the Spanish msgid marked with `gettext_noop` (so the catalog
extraction finds it) and written with named %(...)s parameters. At display time
`render()` translates the msgid into the active language and fills the
parameters. Rows written before this (the JSON is null), or whose msgid is
malformed, show the stored text: nothing already recorded changes meaning.

Parameters are data (codes, SKUs, counts, HTTP statuses): they are shown as they
were, never translated.
"""

import re
from typing import Any

from django.utils.translation import gettext, gettext_lazy

MSGID = "msgid"
PARAMS = "params"


def pack(msgid: str, **params: Any) -> dict[str, Any]:
    """The JSON to store beside the text: `msgid` untranslated, its parameters as
    text (a Decimal or a datetime must survive the JSON)."""
    return {
        MSGID: str(msgid),
        # A packed message as a parameter (an error that wraps another) stays packed,
        # so that it is translated too.
        PARAMS: {name: _packed_or_text(value) for name, value in params.items()},
    }


def _packed_or_text(value: Any) -> Any:
    return value if _is_packed(value) else str(value)


def _is_packed(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get(MSGID), str)


def render(packed: Any, fallback: str) -> str:
    """`packed` in the active language, or `fallback` (the stored text) when there is
    nothing usable to translate."""
    if not _is_packed(packed):
        return fallback
    params = packed.get(PARAMS) or {}
    if not isinstance(params, dict):
        return fallback
    params = {
        name: render(value, "") if _is_packed(value) else value for name, value in params.items()
    }
    translated = gettext(packed[MSGID])
    if not params:
        return translated
    try:
        return translated % params
    except (KeyError, TypeError, ValueError):
        # A translation whose placeholders do not match: the stored text is right.
        return fallback


# Who did something, as stored in `actor` columns (audit rows, the item history)
# before any reader chose a language: the fixed labels, and the ERP update's
# "NonSistemas (actualización #12)" (erp/engine.py), read back into their parts.
ACTOR_LABELS = {
    "Línea de comandos": gettext_lazy("Línea de comandos"),
    "Programada": gettext_lazy("Programada"),
    "Usuario eliminado": gettext_lazy("Usuario eliminado"),
}
_RUN_ACTOR = re.compile(r"(?P<erp>.+) \(actualización (?P<full>completa )?#(?P<pk>\d+)\)")


def actor_label(actor: str) -> str:
    """A stored actor in the reader's language; a person's email stays as it is."""
    if actor in ACTOR_LABELS:
        return str(ACTOR_LABELS[actor])
    if match := _RUN_ACTOR.fullmatch(actor or ""):
        return gettext("%(erp)s (actualización #%(pk)s)") % {
            "erp": match["erp"],
            "pk": match["pk"],
        }
    return actor


def run_error(run: Any) -> str:
    return render(getattr(run, "error_message_i18n", None), run.error_message)


def check_message(connection: Any) -> str:
    return render(
        getattr(connection, "last_check_message_i18n", None), connection.last_check_message
    )


def issue_reason(issue: Any) -> str:
    return render(getattr(issue, "reason_i18n", None), issue.reason)


def audit_detail(event: Any) -> str:
    return render(getattr(event, "detail_i18n", None), event.detail)
