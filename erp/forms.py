"""The ERP settings form, shared by the admin page and `vxm erp configure`.

Both paths validate through this one form so that a URL or a password rule can
never hold in the browser and not on the command line (or the other way round).
"""

import datetime
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from erp import url_guard
from erp.errors import ErpError, ErrorCode
from erp.models import Connection
from erp.secrets import SecretUnreadable

PASSWORD_REQUIRED = _("Escribí la contraseña.")
PASSWORD_UNREADABLE = _(
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


# ---- a store's private certificate authority -----------------------------------------

# A CA bundle is a few KB; anything bigger is not what we asked for.
MAX_CA_BYTES = 64 * 1024
# Every CA of the bundle is listed on the settings page; a handful is plenty.
MAX_CA_CERTS = 10


@dataclass(frozen=True)
class CaSummary:
    """What the settings page says about one stored CA certificate."""

    subject: str
    not_after: datetime.datetime

    @property
    def expired(self) -> bool:
        return self.not_after <= timezone.now()

    @property
    def expires_soon(self) -> bool:
        return self.not_after <= timezone.now() + datetime.timedelta(days=30)


def _load_certificates(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN" in data:
        return list(x509.load_pem_x509_certificates(data))
    # A .cer exported by Windows is often DER (binary): accepted and stored as PEM.
    return [x509.load_der_x509_certificate(data)]


def parse_ca_certificate(data: bytes) -> str:
    """The CA certificate(s) in `data` as normalized PEM; ValidationError saying
    what is wrong otherwise.

    Only certificates of certificate authorities (basicConstraints CA:TRUE) that
    are valid today are accepted, and only the certificates are kept (never
    anything else the file carried).
    """
    if b"PRIVATE KEY" in data:
        # Refused outright, so a private key is never stored (nor needed).
        raise forms.ValidationError(
            "El archivo contiene una clave privada: no la subas. Subí solo el certificado "
            "de la autoridad (CA), que es público. Si compartiste esa clave, considerala "
            "comprometida.",
            code="private_key",
        )
    try:
        certificates = _load_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise forms.ValidationError(
            "El archivo no es un certificado legible. Subí el certificado de la autoridad "
            "(CA) en formato PEM (el texto desde -----BEGIN CERTIFICATE----- hasta "
            "-----END CERTIFICATE-----) o DER (.cer).",
            code="unreadable",
        )
    if len(certificates) > MAX_CA_CERTS:
        raise forms.ValidationError(
            f"El archivo tiene {len(certificates)} certificados; subí solo la CA de tu ERP "
            f"(a lo sumo {MAX_CA_CERTS}).",
            code="too_many",
        )
    now = timezone.now()
    for certificate in certificates:
        subject = certificate.subject.rfc4514_string() or "(sin nombre)"
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
            is_ca = constraints.value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise forms.ValidationError(
                "«%(subject)s» no es el certificado de una autoridad (CA): parece el "
                "certificado del servidor. Pedile a quien administra tu ERP el certificado "
                "de la CA que lo emitió.",
                code="not_ca",
                params={"subject": subject},
            )
        if certificate.not_valid_after_utc <= now:
            raise forms.ValidationError(
                "El certificado de la CA «%(subject)s» venció el %(date)s.",
                code="expired",
                params={"subject": subject, "date": f"{certificate.not_valid_after_utc:%Y-%m-%d}"},
            )
        if certificate.not_valid_before_utc > now:
            raise forms.ValidationError(
                "El certificado de la CA «%(subject)s» recién vale desde el %(date)s.",
                code="not_yet_valid",
                params={"subject": subject, "date": f"{certificate.not_valid_before_utc:%Y-%m-%d}"},
            )
    pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certificates)
    try:
        # What the connection will do with it (erp/url_guard.py): if OpenSSL cannot
        # load it there, say so now rather than at the first update.
        ssl.create_default_context().load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError) as e:
        raise forms.ValidationError(
            "El certificado de la CA no se puede usar para verificar conexiones.",
            code="unusable",
        ) from e
    return pem


def ca_summaries(pem: str) -> list[CaSummary]:
    """The stored CA certificate(s) of a connection, for the settings page."""
    if not pem.strip():
        return []
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return []
    return [
        CaSummary(
            subject=c.subject.rfc4514_string() or "(sin nombre)", not_after=c.not_valid_after_utc
        )
        for c in certificates
    ]


class ConnectionForm(forms.Form):
    url = forms.CharField(
        label=_("URL"),
        max_length=500,
        widget=forms.URLInput(
            attrs={"placeholder": "https://miempresa.nonsistemas.com", "autocomplete": "url"}
        ),
        help_text=_("La dirección de tu instancia, la misma con la que entrás desde el navegador."),
    )
    username = forms.CharField(
        label=_("Usuario"),
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    # render_value=False: the stored password is never sent back to the browser,
    # not even after a validation error on another field.
    password = forms.CharField(
        label=_("Contraseña"),
        max_length=200,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    ca_cert = forms.FileField(
        label=_("Certificado de la CA (opcional)"),
        required=False,
        widget=forms.FileInput(attrs={"accept": ".pem,.crt,.cer"}),
        help_text=_(
            "Solo si tu ERP usa un certificado emitido por una autoridad (CA) propia de "
            "la empresa: subí el certificado de esa CA (.pem, .crt o .cer). Se confía en ella "
            "además de las autoridades públicas; la verificación del certificado nunca se apaga."
        ),
    )
    remove_ca_cert = forms.BooleanField(
        label=_("Quitar el certificado de CA guardado"),
        required=False,
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
        # The CA belongs to this store's connection whatever the ERP, so it can be
        # removed even from another ERP's form.
        self.stored_ca_pem = connection.ca_cert_pem if connection is not None else ""
        if not self.stored_ca_pem:
            del self.fields["remove_ca_cert"]
        if self.connection is not None:
            self.fields["password"].help_text = gettext(
                "Dejala en blanco para conservar la guardada. Si cambiás el servidor de la URL "
                "hay que escribirla de nuevo."
            )
        else:
            self.fields["password"].help_text = gettext("Obligatoria la primera vez.")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        allow_local = bool(settings.VXM_ALLOW_LOCAL_ERP)
        try:
            url = url_guard.check_url(
                url, allow_local=allow_local, allowed_ports=url_guard.allowed_ports_from_settings()
            )
        except ErpError as e:
            raise forms.ValidationError(e.shown, code=e.code) from None
        # A name that resolves to an internal address is refused now, so the admin
        # hears it here rather than at the first update. This is feedback only:
        # every connection checks again, on the addresses it really connects to.
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            url_guard.resolve_and_check(parts.hostname or "", port, allow_local=allow_local)
        except ErpError as e:
            # A name that does not resolve (yet, or right now) may still be saved:
            # "Verificar conexión" says what is wrong with it.
            if e.code != ErrorCode.DNS:
                raise forms.ValidationError(e.shown, code=e.code) from None
        return url

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip()

    def clean_ca_cert(self) -> str | None:
        """The uploaded CA as normalized PEM, or None when nothing was uploaded."""
        upload = self.cleaned_data.get("ca_cert")
        if not upload:
            return None
        data = upload.read(MAX_CA_BYTES + 1)
        if len(data) > MAX_CA_BYTES:
            raise forms.ValidationError(
                gettext("El archivo pesa más de %(kb)s KB: no es un certificado de CA.")
                % {"kb": MAX_CA_BYTES // 1024},
                code="too_large",
            )
        return parse_ca_certificate(data)

    @method_decorator(sensitive_variables("password", "cleaned"))
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password = cleaned.get("password") or ""
        url = cleaned.get("url")
        new_ca = cleaned.get("ca_cert")
        if new_ca and cleaned.get("remove_ca_cert"):
            self.add_error(
                "remove_ca_cert",
                forms.ValidationError(
                    gettext(
                        "Subiste un certificado y marcaste quitar el guardado: "
                        "elegí una de las dos."
                    ),
                    code="ca_conflict",
                ),
            )
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
                    gettext(
                        "Cambiaste el servidor de la URL (antes: %(old)s): escribí la contraseña "
                        "de nuevo. La contraseña guardada solo se envía al servidor para el que "
                        "la escribiste."
                    ),
                    code="host_changed",
                    params={"old": server_label(self.connection.url)},
                ),
            )
        elif new_ca and new_ca != self.stored_ca_pem:
            # A CA trusts whoever holds its key to be any server: with a CA of their
            # own (and a way into the network path) an editor could receive the
            # stored password, so a new CA, like a new server, needs it typed again.
            self.add_error(
                "password",
                forms.ValidationError(
                    gettext(
                        "Subiste un certificado de CA nuevo: escribí la contraseña de nuevo. La "
                        "contraseña guardada solo se envía a servidores verificados como cuando "
                        "la escribiste."
                    ),
                    code="ca_changed",
                ),
            )
        elif not stored_password_readable(self.connection):
            self.add_error(
                "password", forms.ValidationError(PASSWORD_UNREADABLE, code="unreadable")
            )
        return cleaned

    def settings(self) -> dict[str, Any]:
        """The keyword arguments of `actions.save_settings` for what was submitted."""
        return {
            "kind": self.kind,
            "url": self.cleaned_data["url"],
            "username": self.cleaned_data["username"],
            "password": self.new_password,
            "ca_cert_pem": self.new_ca_cert_pem,
        }

    @property
    def new_password(self) -> str | None:
        """The password typed, or None to keep the stored one."""
        return self.cleaned_data.get("password") or None

    @property
    def new_ca_cert_pem(self) -> str | None:
        """The CA to store: PEM, "" to remove the stored one, None to keep it."""
        if self.cleaned_data.get("ca_cert"):
            return str(self.cleaned_data["ca_cert"])
        if self.cleaned_data.get("remove_ca_cert"):
            return ""
        return None


def stored_password_readable(connection: Connection) -> bool:
    try:
        connection.get_password()
    except SecretUnreadable:
        return False
    return True


class UpdateForm(forms.Form):
    full = forms.BooleanField(
        label=_("Actualización completa"),
        required=False,
        help_text=_(
            "Trae todos los ítems, no solo los que cambiaron desde la última "
            "actualización. Tarda más; usala si algo quedó distinto."
        ),
    )
