"""`vxm erp schedule SLUG [--every 15m|30m|1h|6h|24h | --daily HH:MM | --off]`.

Alone it prints the store's schedule, its next run (in the store's time zone)
and why it is paused; with an option it changes it (audited as the command line).
Bad values stop with a message saying what to write, and exit 1.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from erp import schedule as schedules
from erp.models import ScheduleKind
from stores.models import Store


def add_schedule_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "schedule",
        help="Muestra o cambia las actualizaciones automáticas de una tienda.",
        description=_(
            "Sin opciones muestra la programación, la próxima actualización (en la hora de la "
            "tienda) y, si está pausada, por qué. La primera actualización de una programación "
            "nueva corre dentro de un minuto (con «vxm scheduler» y «vxm db_worker» encendidos)."
        ),
    )
    parser.add_argument("slug", help=_("la tienda"))
    what = parser.add_mutually_exclusive_group()
    # Plain strings, checked by erp/schedule.py: its message (in Spanish, with the
    # allowed values) instead of argparse's.
    what.add_argument("--every", metavar="15m|30m|1h|6h|24h", help=_("cada cuánto"))
    what.add_argument("--daily", metavar="HH:MM", help=_("todos los días a esa hora de la tienda"))
    what.add_argument("--off", action="store_true", help=_("desactivarlas"))


def print_or_set_schedule(command: BaseCommand, store: Store, options: dict[str, Any]) -> None:
    try:
        if options.get("every") is not None:
            schedules.set_schedule(
                store,
                kind=ScheduleKind.EVERY,
                every_minutes=schedules.parse_every(options["every"]),
            )
        elif options.get("daily") is not None:
            schedules.set_schedule(
                store, kind=ScheduleKind.DAILY, daily_at=schedules.parse_daily(options["daily"])
            )
        elif options.get("off"):
            schedules.set_schedule(store, kind=ScheduleKind.OFF)
    except schedules.BadSchedule as e:
        raise CommandError(str(e)) from None
    for line in schedule_lines(store):
        command.stdout.write(line)


def schedule_lines(store: Store) -> list[str]:
    schedule = schedules.schedule_of(store)
    tz = store.tz
    lines = [
        _("%(store)s: actualizaciones automáticas %(schedule)s.")
        % {"store": store.slug, "schedule": schedules.describe(schedule)}
    ]
    if schedule is None or not (schedule.is_on or schedule.is_paused):
        return lines
    if schedule.is_paused and schedule.paused_at is not None:
        lines.append(
            _("PAUSADAS desde el %(when)s: %(reason)s")
            % {
                "when": f"{schedule.paused_at.astimezone(tz):%Y-%m-%d %H:%M}",
                "reason": schedule.paused_reason or schedule.paused_code,
            }
        )
        lines.append(_("Qué hacer: %(advice)s") % {"advice": schedules.pause_advice(schedule)})
        lines.append(
            _("(Con «vxm erp configure» también se reanudan al guardar la configuración.)")
        )
    elif schedule.next_run_at is not None:
        wait = schedule.next_run_at - timezone.now()
        minutes = max(0, round(wait.total_seconds() / 60))
        lines.append(
            _("Próxima: %(when)s (%(tz)s), en %(minutes)d min.")
            % {
                "when": f"{schedule.next_run_at.astimezone(tz):%Y-%m-%d %H:%M}",
                "tz": store.time_zone,
                "minutes": minutes,
            }
        )
    if schedule.failures:
        lines.append(
            ngettext(
                "Falló %(count)d vez; se reintenta cada vez más espaciado.",
                "Fallaron %(count)d seguidas; se reintenta cada vez más espaciado.",
                schedule.failures,
            )
            % {"count": schedule.failures}
        )
    if schedule.last_run_id is not None:
        lines.append(_("Última programada: #%(run)d.") % {"run": schedule.last_run_id})
    return lines
