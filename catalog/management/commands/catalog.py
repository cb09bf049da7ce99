"""`vxm catalog import SLUG FILE.csv`, `vxm catalog export SLUG [--format csv|json]` and
`vxm catalog ambiguous SLUG`."""

import getpass
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from catalog import export
from catalog.csv_import import NOTHING_IMPORTED, import_csv
from catalog.models import ambiguous_groups
from stores.models import Store


class Command(BaseCommand):
    help = "Importa y exporta el catálogo de una tienda."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="{import,export,ambiguous}"
        )
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
        amb = actions.add_parser(
            "ambiguous",
            help="Lista los SKU que difieren sólo en mayúsculas o espacios: NonSistemas no "
            "actualiza ninguno de ellos.",
        )
        amb.add_argument("slug", help="Slug de la tienda.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            store = Store.objects.get(slug=options["slug"])
        except Store.DoesNotExist:
            raise CommandError(
                f"No existe la tienda «{options['slug']}». Mirá las tiendas con: vxm store list"
            ) from None
        if options["action"] == "import":
            self.import_file(store, options["file"])
        elif options["action"] == "ambiguous":
            self.ambiguous(store)
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
        for row in report.skipped:
            self.stderr.write(f"No se importó la línea {row.line}: {row.sku}: {row.reason}")
        if report.ambiguous > len(report.skipped):
            self.stderr.write(
                f"... y {report.ambiguous - len(report.skipped)} filas más con SKU ambiguo."
            )
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

    def ambiguous(self, store: Store) -> None:
        groups = ambiguous_groups(store)
        if not groups:
            self.stdout.write(f"«{store.slug}» no tiene SKU ambiguos.")
            return
        count = sum(len(group) for group in groups)
        self.stdout.write(
            f"«{store.slug}»: {count} productos en {len(groups)} "
            f"{'grupo' if len(groups) == 1 else 'grupos'} de SKU que difieren sólo "
            "en mayúsculas o espacios. NonSistemas no actualiza ninguno de un grupo (no "
            "puede saber a cuál se refiere un código); un CSV actualiza cada uno por su SKU "
            "exacto."
        )
        for group in groups:
            self.stdout.write("")
            for item in group:
                note = "  (con espacios alrededor)" if item.sku != item.sku.strip() else ""
                self.stdout.write(f"  «{item.sku}»  id {item.pk}  {item.name}{note}")


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "desconocido"
