from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from stores.access import stores_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Straight to the catalog when the user has one store; a chooser otherwise."""
    stores = list(stores_for(request.user))
    if len(stores) == 1:
        return redirect("catalog:list", store_slug=stores[0].slug)
    return render(request, "home.html", {"stores": stores})
