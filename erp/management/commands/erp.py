"""`vxm erp ...`: the operators' side of the ERP integration.

    vxm erp configure SLUG KIND --url URL --username USER [--password-stdin]
        [--ca-cert FILE.pem | --remove-ca-cert]
    vxm erp verify SLUG
    vxm erp sync SLUG [--full] [--dry-run] [--json]
    vxm erp apply SLUG RUN_ID / vxm erp discard SLUG RUN_ID   (a held update)
    vxm erp guard SLUG [--zero-stock-percent N ...] [--off RULE] [--on RULE]
    vxm erp runs SLUG [--json] [--limit N]
    vxm erp cancel SLUG [RUN_ID]
    vxm erp schedule SLUG [--every 15m|30m|1h|6h|24h | --daily HH:MM | --off]
    vxm erp undo SLUG RUN_ID [--json]
    vxm erp generate-key
    vxm erp reencrypt

Output meant for scripts goes to stdout (`--json`: exactly one JSON document);
progress and errors go to stderr. Exit codes: 0 success, 1 failure (the run or
the verification failed, bad input), 2 bad usage, 3 an update is already running,
130 / 143 the update was stopped by Ctrl-C / SIGTERM (at a page boundary, recorded
as interrupted; nothing lost).
"""

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, TextIO, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from erp import actions, held_cli, registry, reports, secrets, stopping
from erp.cancel import CancelResult, request_cancel
from erp.engine import NotConnected, UpdateAlreadyRunning, execute_run, expire_stale_runs
from erp.errors import ErrorCode
from erp.forms import MAX_CA_BYTES, ConnectionForm
from erp.models import Connection, Run, RunMode, RunStatus
from erp.progress import record_total
from erp.schedule_cli import add_schedule_parser, print_or_set_schedule
from erp.templatetags.erp_tags import COUNT_LABELS
from erp.terminal_progress import PlainLines, TerminalBar
from stores.models import Store

PASSWORD_ENV = "VXM_ERP_PASSWORD"
EXIT_FAILED = 1
EXIT_BUSY = 3
EXIT_INTERRUPTED = 130
MAX_RUNS_LISTED = 1000


class Command(BaseCommand):
    help = "Integración con el ERP: configurar, verificar, actualizar stock y precios, historial."
    # Lets tests (and callers of call_command) hand in the password's stdin.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACCIÓN")

        configure = sub.add_parser(
            "configure",
            help="Guarda la URL y las credenciales del ERP de una tienda.",
            description=(
                f"La contraseña se lee de la entrada estándar (--password-stdin) o de "
                f"{PASSWORD_ENV}; nunca de la línea de comandos. Es obligatoria la primera "
                "vez y cuando cambia el servidor de la URL."
            ),
        )
        configure.add_argument("slug", help="la tienda")
        configure.add_argument("kind", choices=sorted(registry.providers()), help="el ERP")
        configure.add_argument("--url", required=True)
        configure.add_argument("--username", required=True)
        configure.add_argument(
            "--password-stdin", action="store_true", help="leer la contraseña de stdin"
        )
        # Accepted only to refuse it with the reason, instead of argparse's bare error.
        configure.add_argument("--password", help=argparse.SUPPRESS)
        ca = configure.add_mutually_exclusive_group()
        ca.add_argument(
            "--ca-cert",
            metavar="ARCHIVO",
            type=Path,
            help="certificado (PEM) de la CA propia de la empresa, si el ERP usa una; un "
            "certificado nuevo pide la contraseña de nuevo",
        )
        ca.add_argument(
            "--remove-ca-cert", action="store_true", help="quitar el certificado de CA guardado"
        )

        verify = sub.add_parser("verify", help="Prueba la conexión guardada de una tienda.")
        verify.add_argument("slug")

        sync = sub.add_parser("sync", help="Actualiza stock y precios ahora, en este proceso.")
        sync.add_argument("slug")
        sync.add_argument("--full", action="store_true", help="traer todo, no solo lo cambiado")
        sync.add_argument("--json", action="store_true", help="el resultado como un objeto JSON")
        sync.add_argument(
            "--dry-run",
            action="store_true",
            help="vista previa: leer el ERP y decir qué cambiaría, sin cambiar nada",
        )
        held_cli.add_arguments(sub)

        runs = sub.add_parser("runs", help="El historial de actualizaciones de una tienda.")
        runs.add_argument("slug")
        runs.add_argument("--json", action="store_true", help="una lista JSON")
        runs.add_argument("--limit", type=int, default=20, help="cuántas (20)")

        cancel = sub.add_parser(
            "cancel",
            help="Cancela la actualización en cola o en curso de una tienda.",
            description=(
                "Una actualización en cola se cancela en el acto; una en curso se detiene al "
                "terminar la página que está aplicando (lo aplicado queda, la próxima "
                "actualización retoma desde el último punto seguro)."
            ),
        )
        cancel.add_argument("slug")
        cancel.add_argument(
            "run_id",
            nargs="?",
            type=int,
            metavar="RUN_ID",
            help="la actualización (#); por omisión, la que está en cola o en curso",
        )
        add_schedule_parser(sub)
        self._add_undo_arguments(sub)
        self._add_worker_arguments(sub)

        sub.add_parser("generate-key", help="Imprime una clave nueva para VXM_ENCRYPTION_KEYS.")
        sub.add_parser(
            "reencrypt",
            help="Vuelve a cifrar cada contraseña guardada con la primera clave (rotación).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "configure":
            self.configure(options)
        elif action == "verify":
            self.verify(options)
        elif action == "sync":
            self.sync(options)
        elif action == "runs":
            self.runs(options)
        elif action == "cancel":
            self.cancel(options)
        elif action == "schedule":
            print_or_set_schedule(self, self._store(options["slug"]), options)
        elif action == "undo":
            self.undo(options)
        elif action == "worker":
            self.worker(options)
        elif action in held_cli.ACTIONS:
            held_cli.handle(self, action, options)
        elif action == "generate-key":
            self.stdout.write(secrets.generate_key())
        elif action == "reencrypt":
            self.reencrypt()

    # ---- helpers ----------------------------------------------------------------

    @staticmethod
    def _store(slug: str) -> Store:
        try:
            return Store.objects.get(slug=slug)
        except Store.DoesNotExist:
            raise CommandError(f"No existe la tienda «{slug}».") from None

    def _password(self, options: dict[str, Any]) -> str | None:
        """The password from stdin or the environment; None when neither gives one."""
        if options.get("password") is not None:
            raise CommandError(
                "No se acepta la contraseña como argumento (queda en el historial del shell "
                f"y a la vista en la lista de procesos). Usá --password-stdin o {PASSWORD_ENV}."
            )
        from_env = os.environ.get(PASSWORD_ENV)
        if options["password_stdin"]:
            if from_env:
                raise CommandError(
                    f"Vino una contraseña por --password-stdin y otra en {PASSWORD_ENV}: "
                    "usá una sola."
                )
            stdin: TextIO = options.get("stdin") or sys.stdin
            try:
                # Only the line break that `echo` or a heredoc adds; spaces are the password's.
                password = stdin.read().rstrip("\r\n")
                # Undecodable bytes arrive as surrogates (or raise): encrypting needs text.
                password.encode()
            except UnicodeError:
                raise CommandError(
                    "--password-stdin: lo que llegó por la entrada estándar no es texto "
                    "UTF-8. Revisá la codificación del archivo o de la terminal."
                ) from None
            if not password:
                raise CommandError("--password-stdin: la entrada estándar vino vacía.")
            return password
        return from_env or None

    # ---- subcommands ------------------------------------------------------------

    def configure(self, options: dict[str, Any]) -> None:
        store = self._store(options["slug"])
        kind = options["kind"]
        password = self._password(options)
        connection = Connection.objects.filter(store=store).first()
        files = {}
        if options["ca_cert"] is not None:
            path: Path = options["ca_cert"]
            try:
                with path.open("rb") as f:
                    content = f.read(MAX_CA_BYTES + 1)
            except OSError as e:
                raise CommandError(f"No se pudo leer {path}: {e.strerror}.") from None
            files["ca_cert"] = SimpleUploadedFile(path.name, content)
        form = ConnectionForm(
            data={
                "url": options["url"],
                "username": options["username"],
                "password": password or "",
                "remove_ca_cert": options["remove_ca_cert"],
            },
            files=files,
            kind=kind,
            connection=connection,
        )
        if not form.is_valid():
            lines = []
            for name, errors in form.errors.items():
                label = form.fields[name].label if name in form.fields else name
                lines += [f"  {label}: {error}" for error in errors]
            if "password" in form.errors:
                lines.append(f"  (la contraseña va por --password-stdin o {PASSWORD_ENV})")
            raise CommandError("La configuración no es válida:\n" + "\n".join(lines))
        try:
            connection = actions.save_settings(store, **form.settings())
        except actions.ServerChangeWhileRunning as e:
            raise CommandError(str(e)) from None
        except ImproperlyConfigured as e:
            # The password cannot be encrypted: the server's keys are missing or broken.
            raise CommandError(f"No se guardó la configuración. {e}") from None
        provider = registry.provider(kind)
        self.stdout.write(
            f"Configuración guardada: {store.slug} → {provider.name} {connection.url} "
            f"(usuario {connection.username}). Probala con `vxm erp verify {store.slug}`."
        )

    def verify(self, options: dict[str, Any]) -> None:
        store = self._store(options["slug"])
        outcome = actions.verify_connection(store)
        if not outcome.ok:
            raise CommandError(f"La verificación falló ({outcome.code}): {outcome.shown}")
        self.stdout.write(outcome.shown)

    def sync(self, options: dict[str, Any]) -> None:
        store = self._store(options["slug"])
        try:
            run = actions.start_update(
                store,
                full=options["full"],
                origin="cli",
                enqueue=False,
                mode=RunMode.PREVIEW if options["dry_run"] else RunMode.UPDATE,
            )
        except UpdateAlreadyRunning as e:
            raise CommandError(
                f"Ya hay una actualización en curso para {store.slug} (#{e.run.pk}, "
                f"{e.run.get_status_display().lower()}): no se empezó otra.",
                returncode=EXIT_BUSY,
            ) from None
        except NotConnected as e:
            raise CommandError(str(e)) from None
        # Scripts asking for --json get the JSON and nothing else.
        bar: TerminalBar | PlainLines | None = None
        if not options["json"]:
            if self.stderr.isatty():
                bar = TerminalBar(cast(TextIO, self.stderr._out))
            else:
                bar = PlainLines(lambda line: self.stderr.write(line, style_func=str))
        try:
            # Without a bar the total is still kept on the run, for the panel's bar.
            run = execute_run(run.pk, progress=bar if bar is not None else record_total)
        except KeyboardInterrupt:
            self._interrupted(run)
            raise CommandError(
                f"Actualización #{run.pk} interrumpida (Ctrl-C). Lo aplicado hasta ahí quedó "
                "registrado; la próxima actualización retoma desde el último punto seguro.",
                returncode=EXIT_INTERRUPTED,
            ) from None
        finally:
            if bar is not None:
                bar.finish()
        signum = stopping.requested()
        # A signal that came while the run was finishing did not stop it.
        if signum is not None and run.error_code == ErrorCode.INTERRUPTED:
            # SIGTERM or Ctrl-C: the run stopped at a page boundary and says so.
            raise CommandError(
                f"Actualización #{run.pk} detenida ({signal.Signals(signum).name}). Lo "
                "aplicado hasta ahí quedó registrado; la próxima actualización retoma desde "
                "el último punto seguro.",
                returncode=128 + signum,
            )
        run = Run.objects.select_related("store", "requested_by").get(pk=run.pk)
        if options["json"]:
            self.stdout.write(json.dumps(reports.run_summary(run), ensure_ascii=False))
        else:
            self._print_run(run)
            held_cli.print_findings(self, run)
        held_cli.exit_if_held(run)
        if run.status == RunStatus.FAILED:
            raise CommandError(
                f"La actualización #{run.pk} falló ({run.error_code}): {run.error_message}",
                returncode=EXIT_FAILED,
            )

    @staticmethod
    def _interrupted(run: Run) -> None:
        # Ctrl-C before the run took the signals (or forced through them): without
        # this the run would stay "running", blocking every other update of the
        # store until it is declared dead. Whole pages were
        # committed; the watermark did not move, so nothing is lost.
        with transaction.atomic():
            Run.objects.filter(pk=run.pk, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
                status=RunStatus.FAILED,
                finished_at=timezone.now(),
                error_code=ErrorCode.INTERRUPTED,
                error_message="Interrumpida desde la línea de comandos (Ctrl-C).",
            )

    def _print_run(self, run: Run) -> None:
        summary = reports.run_summary(run)
        duration = summary["duration_seconds"]
        self.stdout.write(
            f"{held_cli.run_label(run)} #{run.pk}{' (completa)' if run.full else ''}: "
            f"{run.get_status_display()}"
            + (f" en {duration:.1f} s" if duration is not None else "")
        )
        width = max(len(label) for _, label in COUNT_LABELS)
        for name, label in COUNT_LABELS:
            self.stdout.write(f"  {label:<{width}}  {getattr(run, name):>9}")
        self.stdout.write(
            f"  Detalle: {run.pages} páginas, {run.requests} solicitudes, {run.retries} "
            f"reintentos, {run.relogins} reingresos, {run.reread} releídos."
        )
        if run.error_message:
            self.stdout.write(f"  Error: {run.error_message}")

    def runs(self, options: dict[str, Any]) -> None:
        store = self._store(options["slug"])
        if not 1 <= options["limit"] <= MAX_RUNS_LISTED:
            # Unbounded, a huge number overflows the database's LIMIT (a traceback).
            raise CommandError(f"--limit tiene que ser entre 1 y {MAX_RUNS_LISTED}.")
        expire_stale_runs(store)
        runs = list(
            Run.objects.filter(store=store).select_related(
                "store", "requested_by", "cancel_requested_by"
            )[: options["limit"]]
        )
        if options["json"]:
            self.stdout.write(
                json.dumps([reports.run_summary(run) for run in runs], ensure_ascii=False)
            )
            return
        if not runs:
            self.stdout.write(f"{store.slug}: todavía no hubo actualizaciones.")
            return
        header = (
            f"{'#':>6}  {'pedida':16}  {'estado':21}  {'dur.':>7}  {'recib.':>7}  {'encontr.':>8}  "
            f"{'stock':>6}  {'precio':>6}  {'sin prod.':>9}  {'ambig.':>6}  {'inval.':>6}  "
            f"{'p.no ap.':>8}  {'discont.':>8}  {'bloq.':>6}  por"
        )
        self.stdout.write(header)
        tz = store.tz
        for run in runs:
            duration = run.duration
            self.stdout.write(
                f"{run.pk:>6}  {run.created_at.astimezone(tz):%Y-%m-%d %H:%M}  "
                f"{held_cli.status_label(run):21}  "
                f"{'' if duration is None else f'{duration.total_seconds():.0f} s':>7}  "
                f"{run.received:>7}  {run.matched:>8}  {run.stock_changed:>6}  "
                f"{run.price_changed:>6}  {run.unmatched:>9}  {run.ambiguous:>6}  "
                f"{run.invalid:>6}  {run.price_rejected:>8}  {run.discontinued:>8}  "
                f"{run.locked:>6}  {actions.requested_by_label(run)}"
            )

    def cancel(self, options: dict[str, Any]) -> None:
        store = self._store(options["slug"])
        expire_stale_runs(store)
        if options["run_id"] is None:
            run = Run.objects.filter(
                store=store, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
            ).first()
            if run is None:
                raise CommandError(
                    f"{store.slug} no tiene ninguna actualización en cola ni en curso: no hay "
                    "nada que cancelar."
                )
        else:
            run = Run.objects.filter(store=store, pk=options["run_id"]).first()
            if run is None:
                raise CommandError(
                    f"{store.slug} no tiene ninguna actualización #{options['run_id']}. "
                    f"Mirá las suyas con `vxm erp runs {store.slug}`."
                )
        outcome = request_cancel(store, run, None, origin="cli")
        if outcome.result == CancelResult.ENDED:
            raise CommandError(outcome.message)
        self.stdout.write(outcome.message)

    # ---- undo (issue #11; the logic is in erp/undo.py) --------------------------

    @staticmethod
    def _add_undo_arguments(sub: Any) -> None:
        undo = sub.add_parser(
            "undo",
            help="Deshace una actualización: vuelve a poner el stock y el precio de antes.",
            description=(
                "Vuelve a poner el stock y el precio que tenían antes de la actualización "
                "RUN_ID los productos que todavía tienen los valores que ella les puso; los "
                "que cambiaron después se dejan como están y se listan. Corre en este "
                "proceso. No cambia nada en el ERP."
            ),
        )
        undo.add_argument("slug", help="la tienda")
        undo.add_argument("run_id", type=int, metavar="RUN_ID", help="la actualización (su #)")
        undo.add_argument("--json", action="store_true", help="el resultado como un objeto JSON")

    def undo(self, options: dict[str, Any]) -> None:
        from erp.undo import NOTHING_IN_ERP, UndoRefused, execute_undo, request_undo

        store = self._store(options["slug"])
        try:
            run = request_undo(store, options["run_id"], origin="cli", enqueue=False)
        except UndoRefused as e:
            raise CommandError(e.message, returncode=EXIT_BUSY if e.busy else EXIT_FAILED) from None
        try:
            run = execute_undo(run.pk)
        except KeyboardInterrupt:
            self._interrupted(run)
            raise CommandError(
                f"Deshacer #{run.pk} interrumpido (Ctrl-C). Lo que alcanzó a volver atrás "
                "quedó registrado; pedilo de nuevo para terminar.",
                returncode=EXIT_INTERRUPTED,
            ) from None
        signum = stopping.requested()
        if signum is not None and run.error_code == ErrorCode.INTERRUPTED:
            raise CommandError(
                f"Deshacer #{run.pk} detenido ({signal.Signals(signum).name}). Lo que alcanzó "
                "a volver atrás quedó registrado; pedilo de nuevo para terminar.",
                returncode=128 + signum,
            )
        run = Run.objects.select_related("store", "requested_by").get(pk=run.pk)
        if options["json"]:
            summary = {**reports.run_summary(run), "mode": run.mode, "undoes": run.undoes_id}
            self.stdout.write(json.dumps(summary, ensure_ascii=False))
        else:
            self.stdout.write(
                f"Deshacer #{run.pk} (deshace la actualización #{run.undoes_id}): "
                f"{run.get_status_display()}"
            )
            self.stdout.write(
                f"  Productos revisados: {run.matched}; stocks vueltos atrás: "
                f"{run.stock_changed}; precios vueltos atrás: {run.price_changed}; ya tenían "
                f"sus valores de antes: {run.unchanged}."
            )
            if run.changed_meanwhile:
                self.stdout.write(
                    f"  Se dejaron como están {run.changed_meanwhile} (cambiaron después):"
                )
                shown = run.issues.filter(kind="changed_meanwhile").order_by("id")
                for sku, reason in shown.values_list("sku", "reason")[:20]:
                    self.stdout.write(f"    {sku}: {reason}")
                if run.changed_meanwhile > 20:
                    self.stdout.write(
                        f"    … y {run.changed_meanwhile - 20} más: la lista completa está en "
                        f"la página de #{run.pk} del panel (se puede descargar)."
                    )
            if run.error_message:
                self.stdout.write(f"  Error: {run.error_message}")
            self.stdout.write(f"  {NOTHING_IN_ERP}")
        if run.status == RunStatus.FAILED:
            raise CommandError(
                f"Deshacer #{run.pk} falló ({run.error_code}): {run.error_message}",
                returncode=EXIT_FAILED,
            )

    def reencrypt(self) -> None:
        if not settings.VXM_ENCRYPTION_KEYS:
            raise CommandError(
                "VXM_ENCRYPTION_KEYS no está definida: poné la clave nueva primero y las "
                "anteriores después, separadas por comas, y volvé a correr este comando."
            )
        done, unreadable = 0, []
        for pk, slug, token in Connection.objects.values_list(
            "pk", "store__slug", "password_encrypted"
        ).iterator():
            try:
                fresh = secrets.reencrypt(token)
            except secrets.SecretUnreadable:
                unreadable.append(slug)
                continue
            Connection.objects.filter(pk=pk, password_encrypted=token).update(
                password_encrypted=fresh
            )
            done += 1
        self.stdout.write(f"{done} contraseñas cifradas de nuevo con la primera clave.")
        if unreadable:
            raise CommandError(
                "Ninguna clave configurada descifra la contraseña de: "
                + ", ".join(unreadable)
                + ". Esas tiendas tienen que volver a escribirla en la configuración."
            )

    # ---- worker: several tasks at once (erp/worker.py) ---------------------------------

    @staticmethod
    def _add_worker_arguments(sub: Any) -> None:
        worker = sub.add_parser(
            "worker",
            help=_("Corre las tareas en segundo plano, varias a la vez (siempre encendido)."),
            description=_(
                "Como db_worker, pero con varios hilos: mientras una actualización espera "
                "al ERP, otra avanza. SIGTERM o Ctrl-C detienen cada actualización al "
                "terminar su página."
            ),
        )
        worker.add_argument("--threads", type=int, default=4, help=_("tareas a la vez (4)"))
        worker.add_argument(
            "--queue-name",
            default="default",
            help=_("colas que atiende, separadas por comas: default, full (default)"),
        )
        worker.add_argument(
            "--interval", type=float, default=1.0, help=_("segundos entre consultas sin tareas (1)")
        )
        worker.add_argument("--worker-id", default="", help=_("nombre de este proceso"))

    def worker(self, options: dict[str, Any]) -> None:
        from erp.worker import ThreadedWorker, keep_connections

        if options["threads"] < 1:
            raise CommandError(_("--threads tiene que ser 1 o más."))
        from django.tasks import default_task_backend

        queues = [q.strip() for q in options["queue_name"].split(",") if q.strip()]
        unknown = sorted(set(queues) - set(default_task_backend.queues))
        if unknown or not queues:
            # A misspelt queue would leave a worker waiting forever on nothing.
            raise CommandError(
                _("Cola desconocida: %(unknown)s. Las colas son: %(known)s.")
                % {
                    "unknown": ", ".join(unknown) or "—",
                    "known": ", ".join(sorted(default_task_backend.queues)),
                }
            )
        keep_connections()
        ThreadedWorker(
            queue_names=queues,
            threads=options["threads"],
            interval=options["interval"],
            worker_id=options["worker_id"],
        ).run()
