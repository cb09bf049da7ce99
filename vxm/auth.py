"""Logging in, with failed attempts rate-limited per username and per address.

Without a limit, the login form lets anyone try passwords as fast as the server
answers. Failures are counted in the database (model `vxm.LoginAttempt`), so
every web worker and process sees the same counts and a restart forgets nothing.
The limits (settings VXM_LOGIN_FAILURES_PER_USERNAME, ..._PER_ADDRESS and
VXM_LOGIN_FAILURE_WINDOW_MINUTES; 5 and 20 per 15 minutes by default):

* per username, counted whether or not the user exists (so the answer does not
  tell which do): guessing one account's password from many addresses stops
  after a few tries. The price is that anyone can lock an account for the window
  by failing on purpose; the lock lifts by itself.
* per client address: one address trying many usernames stops too.

While limited, the password is not even checked and the page says, in Spanish,
at what time to try again (with HTTP 429 and Retry-After).
"""

import ipaddress
import logging
import math
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from vxm.models import LoginAttempt

logger = logging.getLogger("vxm.auth")

MAX_USERNAME = 150


def _limits() -> tuple[int, int, timedelta]:
    return (
        int(getattr(settings, "VXM_LOGIN_FAILURES_PER_USERNAME", 5)),
        int(getattr(settings, "VXM_LOGIN_FAILURES_PER_ADDRESS", 20)),
        timedelta(minutes=int(getattr(settings, "VXM_LOGIN_FAILURE_WINDOW_MINUTES", 15))),
    )


def normalized_username(raw: str) -> str:
    # Case-folded: "Admin@X" and "admin@x" share one budget of tries.
    return raw.strip().casefold()[:MAX_USERNAME]


def client_address(request: HttpRequest) -> str:
    """The address failures are counted under.

    Behind a proxy (settings.VXM_BEHIND_PROXY) it is the last X-Forwarded-For
    entry, the one the proxy itself appended; earlier entries are whatever the
    client sent. IPv6 addresses count per /64, the block one client usually holds.
    """
    candidates = []
    if getattr(settings, "VXM_BEHIND_PROXY", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        candidates.append(forwarded.split(",")[-1].strip())
    candidates.append(str(request.META.get("REMOTE_ADDR", "")))
    for candidate in candidates:
        try:
            ip = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if ip.version == 6:
            if ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ipaddress.IPv6Network(f"{ip}/64", strict=False).network_address)
        return str(ip)
    return "0.0.0.0"


def _retry_at(earlier: "QuerySet[LoginAttempt]", limit: int, window: timedelta) -> datetime | None:
    """When the count of `earlier` failures drops below `limit`; None if it is below."""
    if limit <= 0:
        return None
    recent = list(earlier.order_by("-at").values_list("at", flat=True)[:limit])
    if len(recent) < limit:
        return None
    # Once the limit-th most recent failure leaves the window, fewer than `limit` remain.
    return recent[limit - 1] + window


class LoginForm(AuthenticationForm):
    # Django's Spanish text speaks of a "nombre de usuario" under a field labelled Email.
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "El email o la contraseña no son correctos. Revisalos y probá de nuevo.",
    }


class _RefusedForm(LoginForm):
    """The login form, answering "wait" without checking the password."""

    def __init__(self, *args: Any, message: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.message = message

    def clean(self) -> dict[str, Any]:
        raise ValidationError(self.message, code="rate_limited")


class RateLimitedLoginView(LoginView):
    authentication_form = LoginForm
    attempt: LoginAttempt | None = None

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        per_username, per_address, window = _limits()
        now = timezone.now()
        # Forget what is out of every window (indexed on `at`; usually a no-op).
        LoginAttempt.objects.filter(at__lt=now - window).delete()
        # The attempt is written before counting and counts itself as a failure
        # until it succeeds: of many concurrent tries, only those within the limit
        # (by id order) go on to check a password.
        attempt = LoginAttempt.objects.create(
            username=normalized_username(str(request.POST.get("username", ""))),
            address=client_address(request),
            at=now,
        )
        earlier = LoginAttempt.objects.filter(at__gt=now - window, pk__lt=attempt.pk)
        by_username = _retry_at(earlier.filter(username=attempt.username), per_username, window)
        by_address = _retry_at(earlier.filter(address=attempt.address), per_address, window)
        if by_username is not None or by_address is not None:
            # A refused try is not counted: otherwise someone who keeps trying
            # would keep the lock on forever.
            attempt.delete()
            return self._refused(now, by_username, by_address)
        self.attempt = attempt
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        if self.attempt is not None:
            # Logged in: this try and this person's earlier typos are not failures.
            LoginAttempt.objects.filter(
                username=self.attempt.username, address=self.attempt.address
            ).delete()
        return response

    def _refused(
        self, now: datetime, by_username: datetime | None, by_address: datetime | None
    ) -> HttpResponse:
        retry_at = max(t for t in (by_username, by_address) if t is not None)
        minutes = max(1, math.ceil((retry_at - now).total_seconds() / 60))
        local = timezone.localtime(retry_at)
        where = "con este usuario" if by_username is not None else "desde esta conexión"
        message = (
            f"Demasiados intentos fallidos de ingresar {where}. Por seguridad, probá de nuevo "
            f"a las {local:%H:%M} (en {minutes} minuto{'s' if minutes != 1 else ''})."
        )
        # The username is not logged: people type passwords into it by mistake.
        logger.warning(
            "login rate-limited %s for %s",
            "by username" if by_username is not None else "by address",
            client_address(self.request),
        )
        form = _RefusedForm(self.request, data=self.request.POST, message=message)
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(math.ceil((retry_at - now).total_seconds()))
        return response
