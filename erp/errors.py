"""The one error type of the ERP integration.

Every transport or protocol failure is translated once, where it happens, into an
`ErpError` that carries a stable `code` (for logic, tests and the CLI's JSON), a
`message` in words a store admin can act on, and `permanent`: True when trying
again will not help until someone changes something (wrong password, a URL that
is not an ERP), False when a later try may succeed (timeouts, 5xx, rate limits).
"""

from django.db import models


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
    def __init__(self, code: str, message: str, *, permanent: bool = False) -> None:
        message = printable(message)
        super().__init__(message)
        self.code = code
        self.message = message
        self.permanent = permanent

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ErpError({self.code!r}, {self.message!r}, permanent={self.permanent})"
