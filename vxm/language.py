"""The panel's language: chosen by the person, kept on their account.

Until someone chooses, Django's LocaleMiddleware goes by the language cookie and
then the browser's Accept-Language (Spanish, Argentina, when it names neither).
Choosing (`set_language`, the switch in the page header) stores the language on
the account (`vxm.models.UserPreference`) and in the cookie: the account makes it
follow the person to any browser, the cookie keeps the login page in their
language after they log out. On every request of a logged-in person
`UserLanguageMiddleware` applies the account's choice, so a choice made in one
browser reaches the others on their next page.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from vxm.models import UserPreference

SUPPORTED = {code for code, _name in settings.LANGUAGES}


def chosen_language(user: Any) -> str | None:
    """The language the person chose, or None when they never did."""
    if not getattr(user, "is_authenticated", False):
        return None
    preference = UserPreference.objects.filter(user=user).values_list("language", flat=True)
    language = preference.first()
    return language if language in SUPPORTED else None


class UserLanguageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        language = chosen_language(getattr(request, "user", None))
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language  # type: ignore[attr-defined]
        response = self.get_response(request)
        if language and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language:
            # Logged out later, this browser keeps showing the person's language.
            _set_cookie(response, language)
        return response


def _set_cookie(response: HttpResponseBase, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The header's switch: stores the choice and goes back to the same page.

    An unknown language changes nothing (the form only offers known ones). The way
    back is the `next` field or the Referer only when it is an address of this
    site, so the switch cannot be made into a link to somewhere else.
    """
    language = request.POST.get("language", "")
    back = request.POST.get("next") or request.headers.get("Referer", "")
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = "/"
    response = redirect(back)
    if language not in SUPPORTED:
        return response
    if request.user.is_authenticated:
        UserPreference.objects.update_or_create(user=request.user, defaults={"language": language})
    translation.activate(language)
    _set_cookie(response, language)
    return response


@receiver(user_logged_in, dispatch_uid="vxm.language.apply_at_login")
def apply_at_login(
    sender: object, request: HttpRequest | None, user: object, **kwargs: object
) -> None:
    """The page after logging in already speaks the account's language."""
    language = chosen_language(user)
    if language and request is not None:
        translation.activate(language)
        request.LANGUAGE_CODE = language  # type: ignore[attr-defined]
