"""`vxm catalog import SLUG FILE.csv` and `vxm catalog export SLUG [--format csv|json]`."""

import getpass
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from catalog import export
from catalog.csv_import import NOTHING_IMPORTED, import_csv
from stores.models import Store


class Command(BaseCommand):
    help = "Importa y exporta el catálogo de una tienda."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{import,export}")
        imp = actions.add_parser(
            "import",
            help="Crea o actualiza productos desde un CSV sku,name,stock,wholesale_price. "
            "Si alguna fila tiene errores no se importa nada.",
        )
        imp.add_argument("slug", help="Slug de la tienda.")
        imp.add_argument("file", help="Archivo CSV.")
        exp = actions.add_parser("export", help="Escribe el catálogo en la salida estándar.")
        exp.add_argument("slug", help="Slug de la tienda.")
        exp.add_argument("--format", choices=export.FORMATS, default="csv", dest="fmt")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            store = Store.objects.get(slug=options["slug"])
        except Store.DoesNotExist:
            raise CommandError(
                f"No existe la tienda «{options['slug']}». Mirá las tiendas con: vxm store list"
            ) from None
        if options["action"] == "import":
            self.import_file(store, options["file"])
        else:
            for piece in export.iter_export(store, options["fmt"]):
                self.stdout.write(piece, ending="")

    def import_file(self, store: Store, path: str) -> None:
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below; read twice by the import
        except OSError as e:
            raise CommandError(f"No se pudo abrir «{path}»: {e.strerror}.") from None
        with f:
            report = import_csv(store, f, actor=f"línea de comandos ({_login()})")
        for warning in report.warnings:
            self.stderr.write(f"Aviso: {warning}")
        if report.file_error:
            raise CommandError(report.file_error)
        if report.error_count:
            for error in report.errors:
                self.stderr.write(f"línea {error.line}: {error.sku or '(sin SKU)'}: {error.reason}")
            if report.errors_truncated:
                self.stderr.write(
                    f"... y {report.error_count - len(report.errors)} filas más con errores."
                )
            raise CommandError(
                f"{NOTHING_IMPORTED} {report.error_count} de {report.rows} filas con errores."
            )
        self.stdout.write(f"«{store.slug}», {report.rows} filas. {report.summary()}")


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "desconocido"
