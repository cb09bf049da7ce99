"""`vxm demo`: the demo store, its admin, and its connection to a NonSistemas stand-in.

The store's catalog is made from the stand-in's own catalog, imperfectly, as a
real store's would be: most codes match, some differ in letter case, two store
SKUs differ only in case (ambiguous), some ERP items are not sold in the store and
some store items are not in the ERP. Store SKUs never carry surrounding spaces
(catalog.models.clean_sku); an ERP code that does is matched all the same. Store
values start different from the ERP's so the first update has something to show.
Idempotent: an existing demo store is left as it is.
"""

import os
import random
import time
from decimal import Decimal
from typing import Any

import httpx
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from catalog.models import Item
from erp.models import Connection, ErpKind, ScheduleKind
from erp.schedule import set_schedule
from stores.models import Membership, Store

SLUG = "demo"
ADMIN_EMAIL = "admin@demo.test"
ERP_USER = "api-ventas"
PASSWORD_OPTIONS = (
    ("--admin-password", "VXM_DEMO_ADMIN_PASSWORD"),
    ("--erp-password", "VXM_DEMO_ERP_PASSWORD"),
)


class Command(BaseCommand):
    help = (
        "Crea la tienda demo, su administrador y su conexión al NonSistemas de prueba "
        "(idempotente; lo usa scripts/demo)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--standin-url", required=True)
        # Passwords come from the environment: a command line is visible to every
        # user of the machine (`ps`), an environment only to its owner.
        for option, variable in PASSWORD_OPTIONS:
            parser.add_argument(
                option,
                default=os.environ.get(variable),
                help=f"UNSAFE (visible in `ps`): set {variable} instead",
            )
        parser.add_argument(
            "--wait", type=float, default=30.0, help="seconds to wait for the stand-in"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for option, variable in PASSWORD_OPTIONS:
            if not options[option.removeprefix("--").replace("-", "_")]:
                raise CommandError(f"Set {variable} (or {option}).")
        url = options["standin_url"].rstrip("/")
        erp_items = self._standin_items(url, options["wait"])
        with transaction.atomic():
            store, created = Store.objects.get_or_create(
                slug=SLUG, defaults={"name": "Distribuidora Demo"}
            )
            user_model = get_user_model()
            user, _ = user_model.objects.get_or_create(
                username=ADMIN_EMAIL, defaults={"email": ADMIN_EMAIL}
            )
            user.set_password(options["admin_password"])
            user.save()
            Membership.objects.get_or_create(store=store, user=user)
            connection = Connection.objects.filter(store=store).first() or Connection(
                store=store, kind=ErpKind.NONSISTEMAS
            )
            connection.url = url
            connection.username = ERP_USER
            connection.set_password(options["erp_password"])
            connection.settings_changed()  # a new stand-in: nobody has tried it yet
            connection.save()
            if created:
                Item.objects.bulk_create(self._catalog_from(erp_items, store), batch_size=1000)
                # Updates itself (scripts/demo runs `vxm scheduler`): the first within a minute.
                set_schedule(store, kind=ScheduleKind.EVERY, every_minutes=15)
        count = Item.objects.filter(store=store).count()
        self.stdout.write(f"Demo store «{store.name}» ({count} items) connected to {url}")

    def _standin_items(self, url: str, wait: float) -> list[dict[str, Any]]:
        from nonsistemas_standin import StandinClient

        # The stand-in was started a moment ago by scripts/demo: wait until it answers.
        deadline = time.monotonic() + wait
        while True:
            try:
                return StandinClient(url).items()
            except (httpx.HTTPError, OSError) as e:
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"The NonSistemas stand-in at {url} does not answer: {e}"
                    ) from e
                time.sleep(0.2)

    @staticmethod
    def _last_price_list(erp_item: dict[str, Any], rng: random.Random) -> Decimal:
        """The store's price: the ERP's from an older price list (the same, or a few
        percent off), as a real store's catalog is before its first update; a
        random one would look like a wrong price list and the guard rails would
        (rightly) hold the demo's first update."""
        try:
            price = Decimal(str(erp_item.get("precio_mayorista")))
        except ArithmeticError:
            return Decimal(rng.randint(100, 90000))
        if not price.is_finite() or price <= 0:
            return Decimal(rng.randint(100, 90000))
        factor = Decimal(rng.choice(["1", "1", "0.92", "0.95", "1.04"]))
        return (price * factor).quantize(Decimal("0.01"))

    def _catalog_from(self, erp_items: list[dict[str, Any]], store: Store) -> list[Item]:
        rng = random.Random(7)
        items: list[Item] = []
        for n, erp_item in enumerate(erp_items):
            if n % 10 == 9:
                continue  # sold by the ERP, not in this store: "no product" in the report
            code = erp_item["codigo"].strip()
            if n % 17 == 3:
                code = code.lower()  # typed differently in the store
            elif n % 23 == 5:
                code = code.title()  # "Ace-0013"
            items.append(
                Item(
                    store=store,
                    sku=code,
                    name=erp_item.get("descripcion") or code,
                    stock=rng.randint(0, 50),
                    wholesale_price=self._last_price_list(erp_item, rng),
                )
            )
        if items:
            # Two store SKUs that are one code once case and spaces are ignored:
            # the report shows them as ambiguous and neither is touched.
            twin = items[0].sku.lower()
            items.append(
                Item(
                    store=store,
                    sku=twin,
                    name=f"{items[0].name} (duplicado)",
                    stock=1,
                    wholesale_price=Decimal(1000),
                )
            )
        for n in range(25):  # only in the store
            sku = f"TIENDA-{n + 1:03d}"
            items.append(
                Item(
                    store=store,
                    sku=sku,
                    name=f"Producto propio de la tienda {n + 1}",
                    stock=rng.randint(0, 20),
                    wholesale_price=Decimal(rng.randint(1000, 50000)),
                )
            )
        return items
