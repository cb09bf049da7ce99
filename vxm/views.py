from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from stores.access import stores_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Straight to the catalog when the user has one store; a chooser otherwise."""
    stores = list(stores_for(request.user))
    if len(stores) == 1:
        return redirect("catalog:list", store_slug=stores[0].slug)
    return render(request, "home.html", {"stores": stores})


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """The page of a form refused by the CSRF check (CSRF_FAILURE_VIEW): in the
    product's words, with a way back to the form the admin came from.

    The way back is the Referer only when it is an address of this site: the
    header is the sender's to choose, and this page must not become a link to
    somewhere else.
    """
    back = request.headers.get("Referer", "")
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = ""
    return render(
        request,
        "403_csrf.html",
        {"back_url": back, "no_cookie": reason == REASON_NO_CSRF_COOKIE},
        status=403,
    )
