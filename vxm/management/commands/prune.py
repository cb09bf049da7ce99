"""`vxm prune [--days N] [--dry-run] [--json]`: delete what is older than the retention.

For cron, or to see what the daily task (`vxm.tasks.prune_old_records`) will delete.
Exit status: 0 done, 2 bad arguments, 130 / 143 stopped by Ctrl-C / SIGTERM between
two batches (what it deleted stays deleted; running it again goes on).
"""

import argparse
import json
import signal
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from vxm import retention


def _positive(example: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        # A ValueError would make argparse say "invalid parse value"; say what to write.
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
            raise argparse.ArgumentTypeError(
                _("«%(value)s» no vale: escribí un número entero mayor que 0, como %(example)s.")
                % {"value": value, "example": example}
            )
        return int(text)

    return parse


class Command(BaseCommand):
    help = _(
        "Borra el historial, las actualizaciones y las importaciones más antiguas que "
        "VXM_RETENTION_DAYS (400 días), de a tandas; con --dry-run sólo cuenta."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=_positive("400"),
            metavar="N",
            help=_("Borra lo de hace más de N días (por omisión VXM_RETENTION_DAYS)."),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=_("No borra nada: dice cuántas filas borraría de cada tabla."),
        )
        parser.add_argument(
            "--batch-size",
            type=_positive("10000"),
            default=retention.BATCH_SIZE,
            metavar="FILAS",
            help=_("Filas por tanda (cada tanda es una transacción corta)."),
        )
        parser.add_argument("--json", action="store_true", help=_("Salida en JSON."))

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = retention.prune(
                days=options["days"], dry_run=options["dry_run"], batch_size=options["batch_size"]
            )
        except ImproperlyConfigured as e:
            raise CommandError(str(e)) from None
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "dry_run": report.dry_run,
                        "cutoff": report.cutoff.isoformat(),
                        "audit_cutoff": report.audit_cutoff and report.audit_cutoff.isoformat(),
                        "deleted": report.counts,
                        "batches": report.batches,
                        "longest_batch_seconds": round(report.longest_batch, 3),
                        "seconds": round(report.seconds, 3),
                        "stopped": report.stopped_by is not None,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            self._print(report)
        if report.stopped_by is not None:
            raise CommandError(
                _(
                    "Detenido (%(signal)s) entre dos tandas: lo borrado hasta ahí quedó "
                    "borrado; volvé a correr «vxm prune» para seguir."
                )
                % {"signal": signal.Signals(report.stopped_by).name},
                returncode=128 + report.stopped_by,
            )

    def _print(self, report: retention.PruneReport) -> None:
        when = report.cutoff.strftime("%d/%m/%Y %H:%M UTC")
        if report.dry_run:
            self.stdout.write(
                _("Prueba (--dry-run): no se borró nada. Se borraría, anterior al %(when)s:")
                % {"when": when}
            )
        else:
            self.stdout.write(_("Borrado, anterior al %(when)s:") % {"when": when})
        labels = {name: str(retention.LABELS[name]) for name in report.counts}
        width = max(len(label) for label in labels.values())
        for name, count in report.counts.items():
            self.stdout.write(f"  {labels[name]:<{width}}  {count:>12,}".replace(",", "."))
        if report.audit_cutoff is None:
            self.stdout.write(
                _("La auditoría se guarda para siempre (VXM_AUDIT_RETENTION_DAYS=0).")
            )
        else:
            self.stdout.write(
                _("La auditoría, anterior al %(when)s.")
                % {"when": report.audit_cutoff.strftime("%d/%m/%Y %H:%M UTC")}
            )
        if not report.dry_run:
            self.stdout.write(
                ngettext(
                    "%(batches)d tanda en %(seconds).1f s (la más larga, %(longest).2f s).",
                    "%(batches)d tandas en %(seconds).1f s (la más larga, %(longest).2f s).",
                    report.batches,
                )
                % {
                    "batches": report.batches,
                    "seconds": report.seconds,
                    "longest": report.longest_batch,
                }
            )
