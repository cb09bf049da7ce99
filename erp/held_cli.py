"""`vxm erp apply|discard|guard`, and how `vxm erp sync|runs` show previews and
held updates (issue #11). Kept apart from the command's module, which several
features extend."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _

from erp.actions import audit
from erp.engine import NotHeld, UpdateAlreadyRunning, apply_held, discard_held, execute_run
from erp.models import AuditAction, GuardRails, Run, RunMode, RunStatus
from stores.models import Store

ACTIONS = ("apply", "discard", "guard")
EXIT_FAILED = 1
EXIT_BUSY = 3
# `vxm erp sync` of an update a guard rail held: nothing was written, a person
# has to decide (scripts can tell it from a success and from a failure).
EXIT_HELD = 4

# --off/--on names, and the model fields they switch.
RULES = {"zero-stock": "zero_stock_on", "price": "price_on", "full-drop": "full_drop_on"}
SETTINGS = {
    "zero_stock_percent": ("--zero-stock-percent", 1, 100),
    "zero_stock_min": ("--zero-stock-min", 1, 1_000_000),
    "price_percent": ("--price-percent", 1, 100),
    "price_min": ("--price-min", 1, 1_000_000),
    "full_drop_percent": ("--full-drop-percent", 1, 100),
}


def add_arguments(sub: Any) -> None:
    apply = sub.add_parser(
        "apply",
        help=_("Aplica una actualización retenida por los controles de seguridad."),
        description=_(
            "Escribe lo que la actualización leyó, salvo los ítems que la tienda cambió "
            "después (quedan como están y se listan)."
        ),
    )
    apply.add_argument("slug")
    apply.add_argument("run_id", type=int, metavar="RUN_ID")
    apply.add_argument("--json", action="store_true", help=_("el resultado como un objeto JSON"))
    discard = sub.add_parser(
        "discard",
        help=_("Descarta una actualización retenida: no se escribe nada."),
        description=_("La próxima actualización vuelve a leer esos cambios del ERP."),
    )
    discard.add_argument("slug")
    discard.add_argument("run_id", type=int, metavar="RUN_ID")
    guard = sub.add_parser(
        "guard",
        help=_("Muestra o cambia los controles de seguridad de las actualizaciones."),
        description=_(
            "Sin opciones los muestra. Una actualización que los supera queda retenida "
            "hasta que alguien la aplique o la descarte."
        ),
    )
    guard.add_argument("slug")
    for name, (flag, low, high) in SETTINGS.items():
        guard.add_argument(flag, dest=name, type=int, metavar="N", help=f"{low} a {high}")
    guard.add_argument(
        "--off", action="append", default=[], choices=sorted(RULES), help=_("apagar un control")
    )
    guard.add_argument(
        "--on", action="append", default=[], choices=sorted(RULES), help=_("prender un control")
    )
    guard.add_argument("--json", action="store_true", help=argparse.SUPPRESS)


def handle(command: BaseCommand, action: str, options: dict[str, Any]) -> None:
    store = _store(options["slug"])
    if action == "guard":
        _guard(command, store, options)
        return
    run = Run.objects.filter(store=store, pk=options["run_id"]).first()
    if run is None:
        raise CommandError(
            _("La tienda %(slug)s no tiene la actualización #%(id)s.")
            % {"slug": store.slug, "id": options["run_id"]}
        )
    try:
        if action == "discard":
            discard_held(run, origin="cli")
            command.stdout.write(
                _(
                    "Actualización #%(id)s descartada: no se cambió nada. La próxima "
                    "actualización vuelve a leer esos cambios del ERP."
                )
                % {"id": run.pk}
            )
            return
        apply_held(run, origin="cli", enqueue=False)
    except NotHeld as e:
        raise CommandError(str(e)) from None
    except UpdateAlreadyRunning as e:
        raise CommandError(
            _(
                "Hay otra actualización en curso (#%(id)s): esperá a que termine y "
                "aplicá la retenida de nuevo."
            )
            % {"id": e.run.pk},
            returncode=EXIT_BUSY,
        ) from None
    run = execute_run(run.pk)
    run = Run.objects.select_related("store", "requested_by").get(pk=run.pk)
    if options.get("json"):
        import json

        from erp import reports

        command.stdout.write(json.dumps(reports.run_summary(run), ensure_ascii=False))
    else:
        command.stdout.write(
            _("Actualización #%(id)s aplicada: %(status)s. %(written)s cambios de stock, ")
            % {"id": run.pk, "status": run.get_status_display(), "written": run.stock_changed}
            + _("%(prices)s de precio; %(meanwhile)s ítems cambiados en la tienda mientras tanto.")
            % {"prices": run.price_changed, "meanwhile": run.changed_meanwhile}
        )
    if run.status == RunStatus.FAILED:
        raise CommandError(
            f"La actualización #{run.pk} falló ({run.error_code}): {run.error_message}",
            returncode=EXIT_FAILED,
        )


def _store(slug: str) -> Store:
    try:
        return Store.objects.get(slug=slug)
    except Store.DoesNotExist:
        raise CommandError(f"No existe la tienda «{slug}».") from None


def _guard(command: BaseCommand, store: Store, options: dict[str, Any]) -> None:
    both = set(options["off"]) & set(options["on"])
    if both:
        raise CommandError(
            _("No se puede prender y apagar el mismo control: %(rules)s.")
            % {"rules": ", ".join(sorted(both))}
        )
    changes: dict[str, Any] = {}
    for name, (flag, low, high) in SETTINGS.items():
        value = options.get(name)
        if value is None:
            continue
        if not low <= value <= high:
            raise CommandError(
                _("%(flag)s tiene que ser un número entre %(low)s y %(high)s.")
                % {"flag": flag, "low": low, "high": high}
            )
        changes[name] = value
    for rule in options["off"]:
        changes[RULES[rule]] = False
    for rule in options["on"]:
        changes[RULES[rule]] = True
    if changes:
        save_guard_rails(store, changes, user=None)
    rails = GuardRails.for_store(store)
    for line in describe(rails):
        command.stdout.write(line)


def save_guard_rails(store: Store, changes: dict[str, Any], *, user: Any) -> GuardRails:
    """Change a store's guard rails, with its audit row, in one transaction."""
    with transaction.atomic():
        rails, _created = GuardRails.objects.select_for_update().get_or_create(store=store)
        for name, value in changes.items():
            setattr(rails, name, value)
        rails.full_clean()
        rails.save()
        audit(store, user, AuditAction.GUARDS_CHANGED, "; ".join(describe(rails)))
    return rails


def describe(rails: GuardRails) -> list[str]:
    """The store's guard rails, one plain line each."""
    off = _("apagado")
    return [
        _("Stock a 0: %(state)s")
        % {
            "state": _(
                "retener si más del %(p)s %% de los ítems (y al menos %(n)s) quedan sin stock"
            )
            % {"p": rails.zero_stock_percent, "n": rails.zero_stock_min}
            if rails.zero_stock_on
            else off
        },
        _("Precios: %(state)s")
        % {
            "state": _(
                "retener si más del %(p)s %% de los precios que cambian (y al menos %(n)s) "
                "bajan más de la mitad o suben más de diez veces"
            )
            % {"p": rails.price_percent, "n": rails.price_min}
            if rails.price_on
            else off
        },
        _("Actualización completa: %(state)s")
        % {
            "state": _("retener si trae menos del %(p)s %% de los ítems de la última completa")
            % {"p": rails.full_drop_percent}
            if rails.full_drop_on
            else off
        },
    ]


def run_label(run: Run) -> str:
    return _("Vista previa") if run.mode == RunMode.PREVIEW else _("Actualización")


def status_label(run: Run) -> str:
    status = str(run.get_status_display())
    return f"{_('Vista previa')}: {status}" if run.mode == RunMode.PREVIEW else status


def print_findings(command: BaseCommand, run: Run) -> None:
    if run.mode == RunMode.PREVIEW:
        command.stdout.write(_("  Vista previa: no se cambió nada."))
    for finding in run.guard_findings:
        command.stdout.write(f"  ⚠ {finding['message']}")
        for example in finding.get("examples", []):
            command.stdout.write(f"      {example}")


def exit_if_held(run: Run) -> None:
    if run.status == RunStatus.HELD:
        raise CommandError(
            _(
                "La actualización #%(id)s quedó retenida por los controles de seguridad: no "
                "se cambió nada. Revisala y aplicala con «vxm erp apply %(slug)s %(id)s» o "
                "descartala con «vxm erp discard %(slug)s %(id)s»."
            )
            % {"id": run.pk, "slug": run.store.slug},
            returncode=EXIT_HELD,
        )
