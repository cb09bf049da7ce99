"""The ERPs a store can connect. Adding one is a new package beside
erp/nonsistemas/ and one entry here; nothing else names a specific ERP."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_noop
from django.views.decorators.debug import sensitive_variables

from erp import url_guard
from erp.errors import ErpError, ErrorCode
from erp.secrets import SecretUnreadable
from erp.sources import ErpSource

if TYPE_CHECKING:
    from erp.models import Connection


@dataclass(frozen=True)
class Provider:
    kind: str
    name: str
    summary: "str | Promise"  # gettext_lazy: shown in the reader's language
    # Builds the source from a base URL, credentials and the store's private CA
    # (PEM, or None for public roots only).
    make_source: Callable[..., ErpSource]


def providers() -> dict[str, Provider]:
    from erp.nonsistemas.source import PROVIDER as NONSISTEMAS

    return {p.kind: p for p in (NONSISTEMAS,)}


def provider(kind: str) -> Provider:
    try:
        return providers()[kind]
    except KeyError:
        raise ErpError(
            ErrorCode.INTERNAL,
            gettext_noop("ERP desconocido: %(kind)s"),
            permanent=True,
            params={"kind": kind},
        ) from None


# `password` is a local here: hidden from Django's error reports.
@sensitive_variables("password")
def source_for(connection: "Connection") -> ErpSource:
    try:
        password = connection.get_password()
    except SecretUnreadable as e:
        raise ErpError(
            ErrorCode.SECRET_UNREADABLE,
            gettext_noop(
                "La contraseña guardada de NonSistemas no se puede leer (cambió la clave de "
                "cifrado del servidor). Volvé a escribir la contraseña en la configuración."
            ),
            permanent=True,
        ) from e
    # The stored URL passed the settings form's rules when it was saved; checked
    # again here because rules change (VXM_ERP_ALLOWED_PORTS, an upgrade) and rows
    # can be edited outside the form. The transport checks every address anyway;
    # this gives the form's exact message instead of a failure deep in the client.
    url_guard.check_url(
        connection.url,
        allow_local=bool(settings.VXM_ALLOW_LOCAL_ERP),
        allowed_ports=url_guard.allowed_ports_from_settings(),
    )
    return provider(connection.kind).make_source(
        url=connection.url,
        username=connection.username,
        password=password,
        ca_cert_pem=connection.ca_cert_pem or None,
    )
