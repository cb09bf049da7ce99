"""The ERP settings form, shared by the admin page and `vxm erp configure`.

Both paths validate through this one form so that a URL or a password rule can
never hold in the browser and not on the command line (or the other way round).
"""

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables

from erp import url_guard
from erp.errors import ErpError
from erp.models import Connection
from erp.secrets import SecretUnreadable

PASSWORD_REQUIRED = "Escribí la contraseña."
PASSWORD_UNREADABLE = (
    "La contraseña guardada no se puede leer (cambió la clave de cifrado del servidor): "
    "escribila de nuevo."
)


def origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL: the server a password would be sent to.

    Comparing this rather than the whole URL lets an admin fix a path prefix
    without retyping the password, while any change of server requires it.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def server_label(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


class ConnectionForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=500,
        widget=forms.URLInput(
            attrs={"placeholder": "https://miempresa.nonsistemas.com", "autocomplete": "url"}
        ),
        help_text="La dirección de tu instancia, la misma con la que entrás desde el navegador.",
    )
    username = forms.CharField(
        label="Usuario",
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    # render_value=False: the stored password is never sent back to the browser,
    # not even after a validation error on another field.
    password = forms.CharField(
        label="Contraseña",
        max_length=200,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    def __init__(
        self, *args: Any, kind: str, connection: Connection | None = None, **kwargs: Any
    ) -> None:
        self.kind = kind
        # Only a connection to this same ERP can lend its stored password.
        self.connection = connection if connection and connection.kind == kind else None
        if self.connection is not None and "initial" not in kwargs:
            kwargs["initial"] = {"url": self.connection.url, "username": self.connection.username}
        super().__init__(*args, **kwargs)
        if self.connection is not None:
            self.fields["password"].help_text = (
                "Dejala en blanco para conservar la guardada. Si cambiás el servidor de la URL "
                "hay que escribirla de nuevo."
            )
        else:
            self.fields["password"].help_text = "Obligatoria la primera vez."

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        try:
            return url_guard.check_url(
                url,
                allow_local=bool(settings.VXM_ALLOW_LOCAL_ERP),
                allowed_ports=url_guard.allowed_ports_from_settings(),
            )
        except ErpError as e:
            raise forms.ValidationError(e.message, code=e.code) from None

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip()

    @method_decorator(sensitive_variables("password", "cleaned"))
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password = cleaned.get("password") or ""
        url = cleaned.get("url")
        if password or "password" in self.errors:
            return cleaned
        if self.connection is None:
            self.add_error("password", forms.ValidationError(PASSWORD_REQUIRED, code="required"))
        elif url is not None and origin_of(url) != origin_of(self.connection.url):
            # Otherwise anyone who can edit the settings could send the stored
            # password to a server of their choosing.
            self.add_error(
                "password",
                forms.ValidationError(
                    "Cambiaste el servidor de la URL (antes: %(old)s): escribí la contraseña "
                    "de nuevo. La contraseña guardada solo se envía al servidor para el que "
                    "la escribiste.",
                    code="host_changed",
                    params={"old": server_label(self.connection.url)},
                ),
            )
        elif not stored_password_readable(self.connection):
            self.add_error(
                "password", forms.ValidationError(PASSWORD_UNREADABLE, code="unreadable")
            )
        return cleaned

    @property
    def new_password(self) -> str | None:
        """The password typed, or None to keep the stored one."""
        return self.cleaned_data.get("password") or None


def stored_password_readable(connection: Connection) -> bool:
    try:
        connection.get_password()
    except SecretUnreadable:
        return False
    return True


class UpdateForm(forms.Form):
    full = forms.BooleanField(
        label="Actualización completa",
        required=False,
        help_text="Trae todos los ítems, no solo los que cambiaron desde la última "
        "actualización. Tarda más; usala si algo quedó distinto.",
    )
