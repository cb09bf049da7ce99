"""Stores (tenants) and who may administer them."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class Currency(models.TextChoices):
    ARS = "ARS", _("Peso argentino (ARS)")
    USD = "USD", _("Dólar estadounidense (USD)")


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise ValidationError(f"«{value}» no es una zona horaria conocida.") from e


class Store(models.Model):
    name = models.CharField(_("nombre"), max_length=200)
    slug = models.SlugField(unique=True, max_length=60)
    currency = models.CharField(
        "moneda", max_length=3, choices=Currency.choices, default=Currency.ARS
    )
    time_zone = models.CharField(
        "zona horaria",
        max_length=64,
        default="America/Argentina/Buenos_Aires",
        validators=[validate_time_zone],
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Membership(models.Model):
    """A user who administers a store. Every page and task checks this."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "user"], name="unique_store_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.store}"
