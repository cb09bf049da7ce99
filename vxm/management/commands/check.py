"""`vxm check`: Django's check command, stricter with --deploy.

`vxm check --deploy` is what a deployment pipeline runs before shipping, and a
deploy *warning* (no HSTS, cookies sent over plain http, DEBUG on) is exactly the
kind of thing it must stop: so with --deploy the command fails on warnings unless
--fail-level says otherwise. Without --deploy it behaves like Django's own.
"""

from typing import Any

from django.core.management.base import CommandParser
from django.core.management.commands.check import Command as DjangoCheckCommand


class Command(DjangoCheckCommand):
    help = (
        "Revisa la instalación en busca de problemas. Con --deploy (antes de producción) "
        "las advertencias también fallan (estado 1), salvo con --fail-level."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        # None = "not given", resolved in handle() once --deploy is known.
        parser.set_defaults(fail_level=None)

    def handle(self, *app_labels: Any, **options: Any) -> None:
        if options["fail_level"] is None:
            options["fail_level"] = "WARNING" if options["deploy"] else "ERROR"
        super().handle(*app_labels, **options)
