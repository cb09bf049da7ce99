"""The product's URLs, the views that fail on purpose (tests/error_urls.py), and one
that refuses permission: no product view raises PermissionDenied today, but the
403 page must be checked like every other."""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import path

from tests.error_urls import urlpatterns as error_urlpatterns


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


urlpatterns = [*error_urlpatterns, path("test-forbidden/", forbidden)]
