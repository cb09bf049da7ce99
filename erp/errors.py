"""The one error type of the ERP integration.

Every transport or protocol failure is translated once, where it happens, into an
`ErpError` that carries a stable `code` (for logic, tests and the CLI's JSON), a
`message` in words a store admin can act on, and `permanent`: True when trying
again will not help until someone changes something (wrong password, a URL that
is not an ERP), False when a later try may succeed (timeouts, 5xx, rate limits).
"""

from typing import Any

from django.db import models

from erp import stored_text


class ErrorCode(models.TextChoices):
    MALFORMED_URL = "malformed_url", "URL mal formada"
    URL_NOT_ALLOWED = "url_not_allowed", "URL no permitida"
    DNS = "dns", "El nombre no existe"
    REFUSED = "refused", "Nadie responde"
    TIMEOUT = "timeout", "Tiempo agotado"
    TLS = "tls", "Falla de certificado"
    CONNECTION = "connection", "Conexión cortada"
    NOT_ERP = "not_erp", "No es un ERP"
    BAD_CREDENTIALS = "bad_credentials", "Usuario o contraseña incorrectos"
    NO_API_ACCESS = "no_api_access", "Sin acceso a la API"
    TOKEN = "token", "Sesión rechazada"
    RATE_LIMITED = "rate_limited", "Demasiadas solicitudes"
    SERVER_ERROR = "server_error", "El ERP está fallando"
    BAD_RESPONSE = "bad_response", "Respuesta ilegible"
    ABSURD_RESPONSE = "absurd_response", "Respuesta absurda"
    DEADLINE = "deadline", "Tiempo máximo de la actualización"
    SECRET_UNREADABLE = "secret_unreadable", "Contraseña guardada ilegible"
    INTERRUPTED = "interrupted", "Actualización interrumpida"
    INTERNAL = "internal", "Error interno"


def printable(text: str) -> str:
    """`text` from an ERP, safe to store and show: control characters replaced.

    PostgreSQL refuses NUL in text columns (the write, and with it a whole batch
    or the run's outcome, would fail), and other control characters garble a
    page or a terminal. Whitespace becomes a space, the rest U+FFFD.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else (" " if ch.isspace() else "\ufffd") for ch in text)


def storable(text: str) -> bool:
    """Whether `text` can go into a query or a text column of every database we
    use: no NUL (PostgreSQL) and valid Unicode (a lone surrogate, which a JSON
    `\\ud800` escape decodes to, cannot be encoded for either database)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class ErpError(Exception):
    """An ERP failure, with its message for the store's admin.

    `message` is the Spanish msgid (marked with `gettext_noop` where it is written)
    with named `%(name)s` placeholders filled from `params`. `.message` is the
    Spanish text, stored as before (a run's error, the last check); `.packed` is
    the msgid and its parameters for the stored text's JSON twin and `.shown` the
    message in the active language (erp/stored_text.py). A parameter may be
    another ErpError (a message that wraps one): its text is then translated too.
    """

    message: str
    msgid: str

    def __init__(
        self,
        code: str,
        message: str,
        *,
        permanent: bool = False,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.msgid = str(message)
        self.params = dict(params or {})
        spanish = {
            name: value.message if isinstance(value, ErpError) else value
            for name, value in self.params.items()
        }
        text = printable(self.msgid % spanish if params else self.msgid)
        super().__init__(text)
        self.code = code
        self.message = text
        self.permanent = permanent

    @property
    def packed(self) -> dict[str, Any]:
        return stored_text.pack(
            self.msgid,
            **{
                name: value.packed if isinstance(value, ErpError) else printable(str(value))
                for name, value in self.params.items()
            },
        )

    @property
    def shown(self) -> str:
        """The message in the active language (the reader's, or the CLI's)."""
        return stored_text.render(self.packed, self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ErpError({self.code!r}, {self.message!r}, permanent={self.permanent})"
