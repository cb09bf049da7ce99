"""ERP passwords at rest: Fernet with keys from VXM_ENCRYPTION_KEYS.

The first key encrypts, every key decrypts, so rotating is: put the new key
first, run `vxm erp reencrypt`, then drop the old key. The keys never derive from
Django's SECRET_KEY, so leaking one does not leak the other.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """A stored secret that no configured key decrypts."""


def _fernet() -> MultiFernet:
    keys = settings.VXM_ENCRYPTION_KEYS
    if not keys:
        raise ImproperlyConfigured(
            "VXM_ENCRYPTION_KEYS is not set: generate a key with "
            "`vxm erp generate-key` and put it in the environment."
        )
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as e:
        raise ImproperlyConfigured(
            "VXM_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from e


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as e:
        raise SecretUnreadable(
            "La contraseña guardada no se puede descifrar con las claves configuradas."
        ) from e


def reencrypt(token: str) -> str:
    """The same secret, encrypted with the first (newest) key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken as e:
        raise SecretUnreadable("No configured key decrypts this value.") from e


def generate_key() -> str:
    return Fernet.generate_key().decode()
