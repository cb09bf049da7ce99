"""`vxm store create SLUG --name NAME [--currency ARS] [--time-zone TZ]` and `vxm store list`."""

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction
from django.db.models import Count

from stores.models import Currency, Store


def _messages(error: ValidationError) -> str:
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    return "; ".join(
        f"{getattr(Store._meta.get_field(field), 'verbose_name', field)}: {' '.join(messages)}"
        for field, messages in error.message_dict.items()
    )


class Command(BaseCommand):
    help = "Crea y lista tiendas."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{create,list}")
        create = actions.add_parser("create", help="Crea una tienda.")
        create.add_argument("slug", help="Identificador en la URL, p. ej. «distribuidora-sur».")
        create.add_argument("--name", required=True, help="Nombre que ven los administradores.")
        create.add_argument(
            "--currency", default=Currency.ARS, choices=Currency.values, help="Moneda (ARS)."
        )
        create.add_argument(
            "--time-zone",
            default=Store._meta.get_field("time_zone").get_default(),
            help="Zona horaria IANA (America/Argentina/Buenos_Aires).",
        )
        actions.add_parser("list", help="Lista las tiendas.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "create":
            self.create(options)
        else:
            self.list()

    def create(self, options: dict[str, Any]) -> None:
        store = Store(
            slug=options["slug"].strip(),
            name=options["name"].strip(),
            currency=options["currency"],
            time_zone=options["time_zone"].strip(),
        )
        try:
            store.full_clean()
        except ValidationError as e:
            # Say "already exists" in so many words: it is the usual mistake.
            if (
                "slug" in getattr(e, "error_dict", {})
                and Store.objects.filter(slug=store.slug).exists()
            ):
                raise CommandError(f"Ya existe una tienda «{store.slug}».") from None
            raise CommandError(f"No se creó la tienda: {_messages(e)}") from None
        try:
            with transaction.atomic():
                store.save()
        except IntegrityError:
            # Someone created the same slug between the check and the insert.
            raise CommandError(f"Ya existe una tienda «{store.slug}».") from None
        self.stdout.write(
            f"Tienda creada: {store.slug} ({store.name}, {store.currency}, {store.time_zone})"
        )

    def list(self) -> None:
        stores = Store.objects.annotate(members=Count("memberships")).order_by("slug")
        if not stores:
            self.stdout.write("No hay tiendas. Creá una con: vxm store create SLUG --name NOMBRE")
            return
        self.stdout.write(f"{'SLUG':<24} {'MONEDA':<6} {'ZONA HORARIA':<34} {'ADMINS':>6}  NOMBRE")
        for store in stores:
            self.stdout.write(
                f"{store.slug:<24} {store.currency:<6} {store.time_zone:<34} "
                f"{store.members:>6}  {store.name}"
            )
