from typing import Any

from django.http import HttpRequest

from stores.access import stores_for


def current_store(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_store": getattr(request, "store", None),
        "my_stores": list(stores_for(user).only("name", "slug")[:50]),
    }
