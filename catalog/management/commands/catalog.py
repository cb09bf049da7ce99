"""`vxm catalog import SLUG FILE.csv`, `vxm catalog export SLUG [--format csv|json|xlsx]
[--output FILE]`,
`vxm catalog ambiguous SLUG` and `vxm catalog lock|unlock SLUG SKU...`."""

import contextlib
import getpass
import os
import sys
import tempfile
from argparse import ArgumentParser
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError
from xlsxwriter.exceptions import FileCreateError

from catalog import export
from catalog.csv_import import MAX_FILE_BYTES, NOTHING_IMPORTED, import_csv
from catalog.locks import SkuNotFound, find_items, set_erp_lock
from catalog.models import ambiguous_groups
from stores.models import Store
from vxm import spreadsheets


class Command(BaseCommand):
    help = "Importa y exporta el catálogo de una tienda."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="{import,export,ambiguous,lock,unlock}"
        )
        imp = actions.add_parser(
            "import",
            help="Crea o actualiza productos desde un CSV sku,name,stock,wholesale_price. "
            "Si alguna fila tiene errores no se importa nada.",
        )
        imp.add_argument("slug", help="Slug de la tienda.")
        imp.add_argument("file", help="Archivo CSV.")
        exp = actions.add_parser(
            "export",
            help="Escribe el catálogo en la salida estándar o en un archivo (--output). "
            "csv y json son para programas (coma y punto decimal); xlsx es para Excel.",
        )
        exp.add_argument("slug", help="Slug de la tienda.")
        exp.add_argument("--format", choices=export.FORMATS, default="csv", dest="fmt")
        exp.add_argument(
            "--output", metavar="ARCHIVO", help="Archivo a escribir (obligatorio con xlsx)."
        )
        amb = actions.add_parser(
            "ambiguous",
            help="Lista los SKU que difieren sólo en mayúsculas o espacios: NonSistemas no "
            "actualiza ninguno de ellos.",
        )
        amb.add_argument("slug", help="Slug de la tienda.")
        lock = actions.add_parser(
            "lock",
            help="Bloquea productos frente a NonSistemas: las actualizaciones no cambian su "
            "stock ni su precio (un CSV o una edición manual sí). Si algún SKU no existe o es "
            "ambiguo no se bloquea ninguno.",
        )
        lock.add_argument("slug", help="Slug de la tienda.")
        lock.add_argument("skus", nargs="+", metavar="SKU", help="SKU de los productos.")
        unlock = actions.add_parser(
            "unlock",
            help="Desbloquea productos: la próxima actualización completa les trae el stock y "
            "el precio de NonSistemas.",
        )
        unlock.add_argument("slug", help="Slug de la tienda.")
        unlock.add_argument("skus", nargs="+", metavar="SKU", help="SKU de los productos.")

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
        elif options["action"] in ("lock", "unlock"):
            self.lock(store, options["skus"], locked=options["action"] == "lock")
        else:
            self.export(store, options["fmt"], options["output"])

    def export(self, store: Store, fmt: str, output: str | None) -> None:
        if output:
            self.export_to_file(store, fmt, output)
            return
        if fmt == "xlsx":
            # A workbook is a zip: on a terminal it is garbage, and a pipe is
            # rarely what was meant.
            raise CommandError(
                "El formato xlsx es un archivo binario: indicá dónde guardarlo con "
                f"--output, por ejemplo: vxm catalog export {store.slug} --format xlsx "
                f"--output catalogo-{store.slug}.xlsx"
            )
        try:
            for piece in export.iter_export(store, fmt):
                self.stdout.write(piece, ending="")
            self.stdout.flush()
        except BrokenPipeError:
            # Whoever read the output has gone (`vxm catalog export sur | head`): stop
            # like any Unix tool, without a traceback, and without Python's own
            # complaint when it flushes stdout at exit.
            _silence_stdout()
            raise CommandError("La salida se cerró antes de terminar la exportación.") from None

    def export_to_file(self, store: Store, fmt: str, path: str) -> None:
        """Writes beside `path` and renames at the end, so a failure leaves no half
        file where the old one (if any) was."""
        partial = f"{path}.parcial"
        try:
            if fmt == "xlsx":
                export.write_xlsx(store, partial, spreadsheets.report_locale())
            else:
                # newline="": the same bytes as on standard output.
                with open(partial, "w", encoding="utf-8", newline="") as f:
                    for piece in export.iter_export(store, fmt):
                        f.write(piece)
            os.replace(partial, path)
        except (OSError, FileCreateError) as e:
            with contextlib.suppress(OSError):
                os.remove(partial)
            # XlsxWriter wraps the OSError that says why.
            cause = e.__context__ if isinstance(e, FileCreateError) else e
            reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else e
            raise CommandError(f"No se pudo escribir «{path}»: {reason}.") from None
        self.stderr.write(f"Catálogo de «{store.slug}» guardado en {path}.")

    def import_file(self, store: Store, path: str) -> None:
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below; read twice by the import
        except OSError as e:
            raise CommandError(f"No se pudo abrir «{path}»: {e.strerror}.") from None
        with f:
            try:
                with _seekable(f, path) as readable:
                    report = import_csv(store, readable, actor=f"línea de comandos ({_login()})")
            except OSError as e:
                # A disk or network file system failing mid-read. The import's
                # transaction was rolled back: nothing of the file was applied.
                raise CommandError(
                    f"No se pudo leer «{path}»: {e.strerror or e}. No se importó nada."
                ) from None
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

    def lock(self, store: Store, skus: list[str], *, locked: bool) -> None:
        try:
            items = find_items(store, skus)
        except SkuNotFound as e:
            for problem in e.problems:
                self.stderr.write(problem)
            raise CommandError(
                f"No se {'bloqueó' if locked else 'desbloqueó'} nada. Mirá los SKU con: "
                f"vxm catalog export {store.slug}"
            ) from None
        changed = {
            item.pk
            for item in set_erp_lock(
                store,
                [item.pk for item in items],
                locked=locked,
                actor=f"línea de comandos ({_login()})",
            )
        }
        for item in items:
            if item.pk in changed:
                state = "bloqueado" if locked else "desbloqueado"
            else:
                state = "ya estaba bloqueado" if locked else "no estaba bloqueado"
            self.stdout.write(f"«{item.sku}»: {state}.")
        if locked:
            self.stdout.write(
                "NonSistemas no cambia su stock ni su precio hasta que los desbloquees "
                f"(vxm catalog unlock {store.slug} SKU...)."
            )
        elif changed:
            self.stdout.write(
                "La próxima actualización completa les trae el stock y el precio de "
                f"NonSistemas (vxm erp sync {store.slug} --full)."
            )


@contextmanager
def _seekable(f: IO[bytes], path: str) -> Iterator[IO[bytes]]:
    """`f` itself if it can be read twice; else (a pipe, `/dev/stdin`) a temporary
    copy, no larger than the panel accepts."""
    if f.seekable():
        yield f
        return
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as copy:
        while chunk := f.read(1024 * 1024):
            copy.write(chunk)
            if copy.tell() > MAX_FILE_BYTES:
                raise CommandError(
                    f"«{path}» pasa de {MAX_FILE_BYTES // (1024 * 1024)} MB: dividilo en "
                    "partes e importalas de a una."
                )
        copy.seek(0)
        yield copy


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (call_command's StringIO)
        pass


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "desconocido"
