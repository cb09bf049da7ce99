"""The product's URLs plus views that fail on purpose, for the error page tests."""

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.urls import path

from vxm.urls import urlpatterns as product_urlpatterns


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug of ours")


def suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("a request that makes no sense")


urlpatterns = [
    *product_urlpatterns,
    path("test-crash/", crash),
    path("test-suspicious/", suspicious),
]
