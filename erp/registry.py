"""The ERPs a store can connect. Adding one is a new package beside
erp/nonsistemas/ and one entry here; nothing else names a specific ERP."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from erp.errors import ErpError, ErrorCode
from erp.secrets import SecretUnreadable
from erp.sources import ErpSource

if TYPE_CHECKING:
    from erp.models import Connection


@dataclass(frozen=True)
class Provider:
    kind: str
    name: str
    summary: str
    # Builds the source from a base URL and credentials.
    make_source: Callable[..., ErpSource]


def providers() -> dict[str, Provider]:
    from erp.nonsistemas.source import PROVIDER as NONSISTEMAS

    return {p.kind: p for p in (NONSISTEMAS,)}


def provider(kind: str) -> Provider:
    try:
        return providers()[kind]
    except KeyError:
        raise ErpError(ErrorCode.INTERNAL, f"ERP desconocido: {kind}", permanent=True) from None


def source_for(connection: "Connection") -> ErpSource:
    try:
        password = connection.get_password()
    except SecretUnreadable as e:
        raise ErpError(
            ErrorCode.SECRET_UNREADABLE,
            "La contraseña guardada de NonSistemas no se puede leer (cambió la clave de "
            "cifrado del servidor). Volvé a escribir la contraseña en la configuración.",
            permanent=True,
        ) from e
    return provider(connection.kind).make_source(
        url=connection.url, username=connection.username, password=password
    )
