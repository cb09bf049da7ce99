"""ERP passwords at rest: Fernet with keys from VXM_ENCRYPTION_KEYS.

The first key encrypts, every key decrypts, so rotating is: put the new key
first, run `vxm erp reencrypt`, then drop the old key. The keys never derive from
Django's SECRET_KEY, so leaking one does not leak the other.

Every function here that holds a password or a key in a local variable is
`sensitive_variables`: when something fails inside it (a missing key, a broken
key, a bug), Django's error report (the admins' e-mail, the 500 page's HTML
report, reporters built on it) shows stars instead of the value. Callees of a
decorated function are covered too: Django's filter walks up each frame's callers
to the nearest decorated one.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables


class SecretUnreadable(Exception):
    """A stored secret that no configured key decrypts."""


# All of its locals: `keys` and `key` are the encryption keys themselves.
@sensitive_variables()
def _fernet() -> MultiFernet:
    keys = settings.VXM_ENCRYPTION_KEYS
    if not keys:
        raise ImproperlyConfigured(
            "VXM_ENCRYPTION_KEYS is not set: generate a key with "
            "`vxm erp generate-key` and put it in the environment."
        )
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError, AttributeError):
        # `from None`: the original error's text could quote part of the key.
        raise ImproperlyConfigured(
            "VXM_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes): generate one with `vxm erp generate-key`."
        ) from None


def check_keys() -> str | None:
    """What is wrong with VXM_ENCRYPTION_KEYS, or None: for the deploy check."""
    try:
        _fernet()
    except ImproperlyConfigured as e:
        return str(e)
    return None


# All locals, not just `plaintext`: the filter applies the nearest decorated
# caller's list to every frame below it, and cryptography's own frames hold the
# same password under other names (`data`, `msg`).
@sensitive_variables()
def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


# All locals: the token is only ciphertext, but what it decrypts to is the password.
@sensitive_variables()
def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "La contraseña guardada no se puede descifrar con las claves configuradas."
        ) from None


@sensitive_variables()
def reencrypt(token: str) -> str:
    """The same secret, encrypted with the first (newest) key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("No configured key decrypts this value.") from None


def generate_key() -> str:
    return Fernet.generate_key().decode()
