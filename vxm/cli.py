"""The `vxm` console script: Django's manage.py under the product's name.

Operators run `vxm migrate`, `vxm store create ...`, `vxm catalog import ...`,
`vxm erp sync ...`: every subcommand is a Django management command, so each
honours DATABASE_URL and the rest of the environment like the web server does.

`vxm`, `vxm help` and `vxm --help` list the product's own commands first, each
with what it does, then the few of Django's an operator needs, then the rest of
Django's by app: Django's own list is alphabetical by app and buries the
product's commands under some forty of its own.

Messages follow VXM_LANGUAGE, else LANG: English when it names English
("en_US.UTF-8"), Spanish (Argentina) otherwise, unset or "C" included
(`cli_language`). Only messages: what scripts parse (`catalog export --format
csv|json`, every `--json` key) is the same in both.
"""

import os
import sys
import textwrap
from collections.abc import Mapping

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# The apps whose commands are the product's.
PRODUCT_APPS = ("stores", "catalog", "erp", "vxm")
# Django's (and its add-ons') commands an operator runs, in the README's words.
OPERATIONS = {
    "migrate": _("Crea o actualiza las tablas de la base de datos (al instalar o actualizar)."),
    "db_worker": _(
        "Corre las tareas en segundo plano (actualizaciones, CSV grandes); siempre encendido."
    ),
    "collectstatic": _("Junta los archivos estáticos (CSS, JS) en STATIC_ROOT para servirlos."),
}
WIDTH = 100
HELP_FLAGS = ("help", "--help", "-h")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.strip().splitlines() if line.strip()), "")


def help_text() -> str:
    import django
    from django.core.management import get_commands, load_command_class

    django.setup()
    commands = get_commands()  # name → app
    ours = sorted(
        (name for name, app in commands.items() if app in PRODUCT_APPS),
        key=lambda name: (PRODUCT_APPS.index(commands[name]), name),
    )
    operations = [name for name in OPERATIONS if name in commands and name not in ours]
    width = max(len(name) for name in [*ours, *operations]) + 2

    lines = [
        gettext("Uso: vxm <comando> [opciones]"),
        gettext("«vxm help <comando>» muestra las opciones de un comando."),
        "",
        gettext("Comandos de VentasxMayor:"),
    ]
    indent = " " * (2 + width)

    def entry(name: str, description: str) -> str:
        return textwrap.fill(
            description, WIDTH, initial_indent=f"  {name:<{width}}", subsequent_indent=indent
        )

    for name in ours:
        lines.append(entry(name, _first_line(load_command_class(commands[name], name).help)))
    lines += ["", gettext("Comandos de Django para operar:")]
    lines += [entry(name, str(OPERATIONS[name])) for name in operations]
    lines += ["", gettext("Otros comandos de Django, por aplicación:")]
    rest: dict[str, list[str]] = {}
    for name, app in commands.items():
        if name not in ours and name not in operations:
            # "django.core" is Django itself; add-ons go by their app's name.
            rest.setdefault(
                "django" if app == "django.core" else app.rpartition(".")[2], []
            ).append(name)
    for app in sorted(rest):
        lines.append(
            textwrap.fill(
                ", ".join(sorted(rest[app])),
                WIDTH,
                initial_indent=f"  [{app}] ",
                subsequent_indent="    ",
            )
        )
    return "\n".join(lines) + "\n"


def cli_language(environ: Mapping[str, str]) -> str:
    """The CLI's language: VXM_LANGUAGE, else LANG ("en_US.UTF-8" → "en"); Spanish
    (Argentina) for anything else, unset, "C" and "POSIX" included."""
    raw = environ.get("VXM_LANGUAGE") or environ.get("LANG") or ""
    code = raw.split(".")[0].split("@")[0].replace("_", "-").lower()
    return "en" if code == "en" or code.startswith("en-") else "es-ar"


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vxm.settings")
    import django
    from django.core.management import execute_from_command_line
    from django.utils import translation

    # Translations load only once the apps are ready; Django's own setup later
    # (execute_from_command_line) finds them ready and leaves the language alone.
    django.setup()
    translation.activate(cli_language(os.environ))

    args = list(sys.argv if argv is None else argv)
    args[0] = "vxm"
    # `vxm help erp` and the rest go to Django as they are.
    if len(args) == 1 or (len(args) == 2 and args[1] in HELP_FLAGS):
        sys.stdout.write(help_text())
        return
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
