"""A private certificate authority for tests, like a store's own, and the
server certificates it signs (names only, no IP addresses)."""

import datetime
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def certificate(
    subject: str,
    key: Any,
    *,
    issuer: x509.Certificate | None = None,
    issuer_key: Any = None,
    ca: bool,
    days: int = 365,
    dns_name: str | None = None,
) -> x509.Certificate:
    """A CA (self-signed unless `issuer`) or, with `dns_name`, a server certificate
    for that name, valid until `days` from now (negative: expired)."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    if dns_name:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns_name)]), False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


class Pki:
    """A CA whose key and certificate files live in `tmp`."""

    def __init__(self, tmp: Path, name: str = "Mayorista Sur CA interna") -> None:
        self.tmp = tmp
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = certificate(name, self.ca_key, ca=True)

    def ca_pem(self) -> bytes:
        return self.ca.public_bytes(serialization.Encoding.PEM)

    def issue(self, dns_name: str) -> tuple[Path, Path]:
        """A server certificate for `dns_name` signed by the CA: (cert.pem, key.pem)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = certificate(
            dns_name, key, issuer=self.ca, issuer_key=self.ca_key, ca=False, dns_name=dns_name
        )
        cert_file, key_file = self.tmp / f"{dns_name}.pem", self.tmp / f"{dns_name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_file, key_file

    def server_context(self, dns_name: str) -> ssl.SSLContext:
        """What a TLS server for `dns_name` presents (a certificate this CA signed)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.issue(dns_name))
        return context
