"""The `vxm` console script: Django's manage.py under the product's name.

Operators run `vxm migrate`, `vxm store create ...`, `vxm catalog import ...`,
`vxm erp sync ...`: every subcommand is a Django management command, so each
honours DATABASE_URL and the rest of the environment like the web server does.
"""

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vxm.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv if argv is None else argv)
    args[0] = "vxm"
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
