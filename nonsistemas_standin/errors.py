"""The contract's error responses: status, `codigo`, and the JSON body.

Every error an instance answers has the body
`{"error": {"codigo": "...", "mensaje": "..."}}`; the status says which kind.
"""

import json
from dataclasses import dataclass

# codigo -> (status, default mensaje), as listed in the contract.
ERRORS: dict[str, tuple[int, str]] = {
    "parametro_invalido": (400, "Parámetro inválido"),
    "credenciales_invalidas": (401, "Usuario o clave incorrectos"),
    "token_invalido": (401, "El token es inválido o falta"),
    "token_vencido": (401, "El token expiró"),
    "acceso_api_deshabilitado": (403, "El usuario no tiene habilitado el acceso a la API"),
    "demasiadas_solicitudes": (429, "Demasiadas solicitudes; reintente más tarde"),
    "error_interno": (500, "Error interno del servidor"),
    "servicio_no_disponible": (503, "Servicio no disponible"),
    # Not in the contract's table, but an instance still answers them with the same
    # body shape; clients should only rely on the status for these.
    "no_encontrado": (404, "Recurso no encontrado"),
    "metodo_no_permitido": (405, "Método no permitido"),
}

# The contract ties these statuses to one codigo each; a fault injected with one of
# them answers exactly what a real instance would.
CODIGO_FOR_STATUS: dict[int, str] = {
    429: "demasiadas_solicitudes",
    500: "error_interno",
    503: "servicio_no_disponible",
}


class ApiError(Exception):
    """An error answer of the API, raised from deep in request handling."""

    def __init__(
        self, codigo: str, mensaje: str | None = None, *, retry_after: int | None = None
    ) -> None:
        status, default = ERRORS[codigo]
        super().__init__(f"{status} {codigo}")
        self.status = status
        self.codigo = codigo
        self.mensaje = mensaje or default
        self.retry_after = retry_after


@dataclass(frozen=True)
class ErrorBody:
    codigo: str
    mensaje: str

    def encode(self) -> bytes:
        payload = {"error": {"codigo": self.codigo, "mensaje": self.mensaje}}
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def error_body_for_status(status: int) -> ErrorBody:
    """The body an instance sends with `status` when no specific codigo applies."""
    codigo = CODIGO_FOR_STATUS.get(status)
    if codigo is not None:
        return ErrorBody(codigo, ERRORS[codigo][1])
    return ErrorBody("error", f"Error {status}")
