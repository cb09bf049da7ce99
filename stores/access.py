"""Store access: every store-scoped view goes through `store_view`.

The store comes from the URL slug and is checked against the user's memberships
on each request; a store the user does not belong to answers 404, exactly like a
store that does not exist, so ids and slugs cannot be probed.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase

from stores.models import Store

# Any response will do: a page, a redirect or a streamed download.
StoreView = Callable[Concatenate[HttpRequest, Store, ...], HttpResponseBase]
# What request.user may be.
AnyUser = AbstractBaseUser | AnonymousUser


def stores_for(user: AnyUser) -> QuerySet[Store]:
    if not user.is_authenticated:
        return Store.objects.none()
    return Store.objects.filter(memberships__user_id=user.pk)


def get_store_for(user: AnyUser, slug: str) -> Store:
    try:
        return stores_for(user).get(slug=slug)
    except Store.DoesNotExist:
        raise Http404("No existe esa tienda.") from None


def store_view(view: StoreView) -> Callable[..., HttpResponseBase]:
    @login_required
    @wraps(view)
    def wrapper(
        request: HttpRequest, store_slug: str, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        store = get_store_for(request.user, store_slug)
        request.store = store  # type: ignore[attr-defined]
        return view(request, store, *args, **kwargs)

    return wrapper
