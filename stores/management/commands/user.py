"""`vxm user create EMAIL --store SLUG [--password-stdin]`: a store administrator."""

import secrets
import sys
from argparse import ArgumentParser
from typing import Any, TextIO

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from stores.models import Membership, Store


class Command(BaseCommand):
    help = "Crea administradores de tienda."
    stealth_options = ("stdin",)

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{create}")
        create = actions.add_parser(
            "create",
            help="Crea un usuario y lo hace administrador de la tienda; si ya existe, "
            "sólo lo agrega a la tienda.",
        )
        create.add_argument("email", help="Email, que también es el usuario para entrar.")
        create.add_argument("--store", required=True, help="Slug de la tienda.")
        create.add_argument(
            "--password-stdin",
            action="store_true",
            help="Lee la contraseña de la entrada estándar. Sin esto se genera una "
            "al azar y se muestra una sola vez.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # `stdin` lets tests pass the password without a real terminal.
        stdin: TextIO = options.get("stdin") or sys.stdin
        email = options["email"].strip()
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"«{email}» no es un email válido.") from None
        # The email is the username: compared without case, so "Ana@X.com" and
        # "ana@x.com" are the same person.
        email = email.lower()
        # An email may be longer than a username may (PostgreSQL would refuse it).
        longest = get_user_model()._meta.get_field("username").max_length or 150
        if len(email) > longest:
            raise CommandError(
                f"El email tiene {len(email)} caracteres y el máximo es {longest}: "
                "usá uno más corto."
            )
        try:
            store = Store.objects.get(slug=options["store"])
        except Store.DoesNotExist:
            raise CommandError(
                f"No existe la tienda «{options['store']}». Mirá las tiendas con: vxm store list"
            ) from None

        User = get_user_model()
        user = User.objects.filter(username__iexact=email).first()
        if user is not None:
            self._add_existing(user, store, options["password_stdin"])
            return

        generated = not options["password_stdin"]
        password = secrets.token_urlsafe(12) if generated else self._read_password(stdin)
        candidate = User(username=email, email=email)
        try:
            password_validation.validate_password(password, candidate)
        except ValidationError as e:
            raise CommandError("Contraseña no válida: " + " ".join(e.messages)) from None
        with transaction.atomic():
            user = User.objects.create_user(username=email, email=email, password=password)
            Membership.objects.create(store=store, user=user)
        self.stdout.write(f"Usuario creado: {email}, administra «{store.slug}».")
        if generated:
            self.stdout.write(f"Contraseña (se muestra una sola vez, guardala ahora): {password}")

    def _add_existing(self, user: Any, store: Store, password_given: bool) -> None:
        if password_given:
            # Never change the password of someone who already has an account from
            # here: they would be locked out without knowing why.
            self.stderr.write(
                f"Aviso: {user.get_username()} ya existía; su contraseña no se cambió."
            )
        _, created = Membership.objects.get_or_create(store=store, user=user)
        if created:
            self.stdout.write(
                f"{user.get_username()} ya tenía usuario; ahora también administra «{store.slug}»."
            )
        else:
            self.stdout.write(f"{user.get_username()} ya administraba «{store.slug}».")

    def _read_password(self, stdin: TextIO) -> str:
        # Only the line ending is dropped: spaces may be part of a password.
        try:
            password = stdin.readline().rstrip("\r\n")
            # Undecodable bytes arrive as surrogates (or raise): the hash needs text.
            password.encode()
        except UnicodeError:
            raise CommandError(
                "La contraseña que llegó por la entrada estándar no es texto UTF-8: "
                "escribila de nuevo o revisá la codificación de la terminal."
            ) from None
        if not password:
            raise CommandError("No llegó ninguna contraseña por la entrada estándar.")
        return password
