"""Logging in, with failed attempts limited so that nobody can guess passwords,
and nobody sharing an address (an office NAT, a mobile carrier) locks others out.

Failures are counted in the database (model `vxm.LoginAttempt`), so every web
worker and process sees the same counts and a restart forgets nothing. Within
VXM_LOGIN_FAILURE_WINDOW_MINUTES (15):

* **one username from one address** (VXM_LOGIN_FAILURES_PER_ACCOUNT, 5):
  guessing one account's password. That username is refused from that address
  only; the same person at another address, and everyone else at this one, go on.
* **one username from many addresses** (VXM_LOGIN_FAILURES_PER_USERNAME, 10):
  guessing one account from a botnet. Refused from every browser the account
  has never logged in from.
* **many usernames from one address** (VXM_LOGIN_USERNAMES_PER_ADDRESS, 10
  distinct usernames failed): password spraying. The address is refused for
  browsers that have not logged in before.

A browser that logged in successfully keeps a signed cookie naming that
username and a random id (a "known browser", as OWASP's device cookies). Its
attempts for that username are counted only against that browser (5 failures)
and are exempt from the username-wide and address-wide limits: an attacker who
fails on purpose, from anywhere, cannot lock a user out of the browser they
always use. The trade-off (docs/security.md): while an address is spraying, or
an account is being guessed from many addresses, a *new* browser for that
account waits out the window. Counted usernames need not exist, so the answers
do not tell which do.

While limited, the password is not even checked and the page says, in Spanish,
at what time to try again (with HTTP 429 and Retry-After).
"""

import ipaddress
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import Max, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from vxm.models import LoginAttempt

logger = logging.getLogger("vxm.auth")

MAX_USERNAME = 150
KNOWN_BROWSER_COOKIE = "vxm_known_browser"
KNOWN_BROWSER_SALT = "vxm.auth.known-browser"
KNOWN_BROWSER_DAYS = 180
# Usernames one browser remembers (a shared computer in the store's office).
KNOWN_BROWSER_USERNAMES = 5


@dataclass(frozen=True)
class Limits:
    per_account: int
    per_username: int
    usernames_per_address: int
    window: timedelta


def _limits() -> Limits:
    return Limits(
        per_account=int(getattr(settings, "VXM_LOGIN_FAILURES_PER_ACCOUNT", 5)),
        per_username=int(getattr(settings, "VXM_LOGIN_FAILURES_PER_USERNAME", 10)),
        usernames_per_address=int(getattr(settings, "VXM_LOGIN_USERNAMES_PER_ADDRESS", 10)),
        window=timedelta(minutes=int(getattr(settings, "VXM_LOGIN_FAILURE_WINDOW_MINUTES", 15))),
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


def _known_browsers(request: HttpRequest) -> list[list[str]]:
    """[username, browser id] pairs this browser logged in as (newest first); a
    cookie that is missing, forged, tampered with or too old gives none."""
    raw = request.COOKIES.get(KNOWN_BROWSER_COOKIE)
    if not raw:
        return []
    try:
        value = signing.loads(
            raw, salt=KNOWN_BROWSER_SALT, max_age=timedelta(days=KNOWN_BROWSER_DAYS)
        )
    except signing.BadSignature:
        return []
    if not isinstance(value, list):
        return []
    return [
        entry
        for entry in value
        if isinstance(entry, list)
        and len(entry) == 2
        and all(isinstance(part, str) and part for part in entry)
    ][:KNOWN_BROWSER_USERNAMES]


def known_browser_id(request: HttpRequest, username: str) -> str:
    """This browser's id for `username` if it logged in as that user before, else ""."""
    return next((device for name, device in _known_browsers(request) if name == username), "")


def _retry_at(earlier: "QuerySet[LoginAttempt]", limit: int, window: timedelta) -> datetime | None:
    """When the count of `earlier` failures drops below `limit`; None if it is below."""
    if limit <= 0:
        return None
    recent = list(earlier.order_by("-at").values_list("at", flat=True)[:limit])
    if len(recent) < limit:
        return None
    # Once the limit-th most recent failure leaves the window, fewer than `limit` remain.
    return recent[limit - 1] + window


def _usernames_retry_at(
    earlier: "QuerySet[LoginAttempt]", limit: int, window: timedelta
) -> datetime | None:
    """When fewer than `limit` distinct usernames remain among `earlier` failures."""
    if limit <= 0:
        return None
    latest = list(
        earlier.values("username")
        .annotate(last=Max("at"))
        .order_by("-last")
        .values_list("last", flat=True)[:limit]
    )
    if len(latest) < limit:
        return None
    return latest[limit - 1] + window


class LoginForm(AuthenticationForm):
    # Django's Spanish text speaks of a "nombre de usuario" under a field labelled Email.
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _(
            "El email o la contraseña no son correctos. Revisalos y probá de nuevo."
        ),
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
        limits = _limits()
        now = timezone.now()
        # Forget what is out of every window (indexed on `at`; usually a no-op).
        LoginAttempt.objects.filter(at__lt=now - limits.window).delete()
        username = normalized_username(str(request.POST.get("username", "")))
        # The attempt is written before counting and counts itself as a failure
        # until it succeeds: of many concurrent tries, only those within the limit
        # (by id order) go on to check a password.
        attempt = LoginAttempt.objects.create(
            username=username,
            address=client_address(request),
            device=known_browser_id(request, username),
            at=now,
        )
        earlier = LoginAttempt.objects.filter(at__gt=now - limits.window, pk__lt=attempt.pk)
        refusals: list[tuple[str, datetime | None]]
        if attempt.device:
            # A browser this user logged in from: only its own failures count, so
            # nobody elsewhere can lock the user out of it; stolen, it still
            # allows no more guesses than any one address does.
            refusals = [
                (
                    "account",
                    _retry_at(
                        earlier.filter(username=username, device=attempt.device),
                        limits.per_account,
                        limits.window,
                    ),
                )
            ]
        else:
            unknown = earlier.filter(device="")
            refusals = [
                (
                    "account",
                    _retry_at(
                        unknown.filter(username=username, address=attempt.address),
                        limits.per_account,
                        limits.window,
                    ),
                ),
                (
                    "username",
                    _retry_at(
                        unknown.filter(username=username), limits.per_username, limits.window
                    ),
                ),
                (
                    "address",
                    _usernames_retry_at(
                        unknown.filter(address=attempt.address),
                        limits.usernames_per_address,
                        limits.window,
                    ),
                ),
            ]
        limited: list[tuple[str, datetime]] = [(why, at) for why, at in refusals if at is not None]
        if limited:
            # A refused try is not counted: otherwise someone who keeps trying
            # would keep the lock on forever.
            attempt.delete()
            return self._refused(now, limited)
        self.attempt = attempt
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        if self.attempt is not None:
            attempt = self.attempt
            # Logged in: this try and this person's earlier typos are not failures.
            LoginAttempt.objects.filter(
                username=attempt.username, address=attempt.address, device=""
            ).delete()
            if attempt.device:
                LoginAttempt.objects.filter(
                    username=attempt.username, device=attempt.device
                ).delete()
            self._remember_browser(response, attempt.username, attempt.device)
        return response

    def _remember_browser(self, response: HttpResponse, username: str, device: str) -> None:
        """Mark this browser as known for `username` (a new id if it was not)."""
        others = [e for e in _known_browsers(self.request) if e[0] != username]
        entries = [[username, device or secrets.token_hex(16)], *others]
        response.set_cookie(
            KNOWN_BROWSER_COOKIE,
            signing.dumps(entries[:KNOWN_BROWSER_USERNAMES], salt=KNOWN_BROWSER_SALT),
            max_age=KNOWN_BROWSER_DAYS * 24 * 3600,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )

    def _refused(self, now: datetime, limited: list[tuple[str, datetime]]) -> HttpResponse:
        # The latest of the limits that apply says when to come back.
        why, retry_at = max(limited, key=lambda item: item[1])
        minutes = max(1, math.ceil((retry_at - now).total_seconds() / 60))
        local = timezone.localtime(retry_at)
        where = {
            "account": gettext("con este usuario desde esta conexión"),
            "username": gettext("con este usuario"),
            "address": gettext("con distintos usuarios desde esta conexión"),
        }[why]
        message = ngettext(
            "Demasiados intentos fallidos de ingresar %(where)s. Por seguridad, probá de nuevo "
            "a las %(time)s (en %(minutes)s minuto).",
            "Demasiados intentos fallidos de ingresar %(where)s. Por seguridad, probá de nuevo "
            "a las %(time)s (en %(minutes)s minutos).",
            minutes,
        ) % {"where": where, "time": f"{local:%H:%M}", "minutes": minutes}
        if why != "account":
            message += " " + gettext(
                "Desde un navegador en el que ya ingresaste antes podés entrar ahora."
            )
        # The username is not logged: people type passwords into it by mistake.
        logger.warning("login rate-limited by %s for %s", why, client_address(self.request))
        form = _RefusedForm(self.request, data=self.request.POST, message=message)
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(math.ceil((retry_at - now).total_seconds()))
        return response
