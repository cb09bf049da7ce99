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
        "Checks the entire project for potential problems. With --deploy, warnings fail "
        "too (exit status 1) unless --fail-level is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        # None = "not given", resolved in handle() once --deploy is known.
        parser.set_defaults(fail_level=None)

    def handle(self, *app_labels: Any, **options: Any) -> None:
        if options["fail_level"] is None:
            options["fail_level"] = "WARNING" if options["deploy"] else "ERROR"
        super().handle(*app_labels, **options)
