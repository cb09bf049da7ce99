"""The panel's "Cancelar actualización" (issue #12): a POST from the
integrations page or a run's page, for the members of the store (`store_view`:
another store's run answers 404)."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from erp.cancel import request_cancel
from erp.views import _store_run
from stores.access import store_view
from stores.models import Store


@store_view
@require_POST
def cancel_run(request: HttpRequest, store: Store, run_id: int) -> HttpResponse:
    run = _store_run(store, run_id)
    outcome = request_cancel(store, run, request.user, origin="panel")
    if outcome.changed:
        messages.success(request, outcome.message)
    else:
        messages.info(request, outcome.message)
    # Back where the button was: a fixed choice, never a URL from the request.
    if request.POST.get("back") == "run":
        return redirect(reverse("erp:run", args=[store.slug, run.pk]))
    return redirect(reverse("erp:integrations", args=[store.slug]))
