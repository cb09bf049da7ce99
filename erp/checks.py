"""System checks for the ERP integration's security settings.

`vxm check --deploy` runs the ones registered with deploy=True together with
Django's own deploy checks; an ERROR makes it exit non-zero, so a deployment
pipeline can refuse to ship a configuration that leaves the guard open or the
stored passwords unreadable.

Checks that would also stop a developer's `vxm runserver` (a missing key, the
development SECRET_KEY, the local-ERP switch) are deploy-only: on a laptop they
are normal. A key that is present but malformed is an error everywhere, since
every save of the settings form would fail with it.
"""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import Error, Tags, register

from erp import secrets

# vxm/settings.py's fallback when VXM_SECRET_KEY is unset (kept in step by
# tests/test_security.py, which runs the deploy check without it).
DEVELOPMENT_SECRET_KEY = "insecure-development-key-change-me"


@register(Tags.security, deploy=True)
def check_local_erp_switch(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    if not getattr(settings, "VXM_ALLOW_LOCAL_ERP", False):
        return []
    return [
        Error(
            "VXM_ALLOW_LOCAL_ERP is on: store admins can point the ERP URL at this "
            "machine, the private network and plain http.",
            hint="Unset VXM_ALLOW_LOCAL_ERP; it is for development, demos and tests only.",
            id="erp.E001",
        )
    ]


@register(Tags.security, deploy=True)
def check_encryption_keys_set(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[Error]:
    if getattr(settings, "VXM_ENCRYPTION_KEYS", None):
        return []
    return [
        Error(
            "VXM_ENCRYPTION_KEYS is not set: ERP passwords can be neither saved nor read.",
            hint="Generate a key with `vxm erp generate-key` and set VXM_ENCRYPTION_KEYS. "
            "Keep it apart from the database backups.",
            id="erp.E002",
        )
    ]


@register(Tags.security)
def check_encryption_keys_valid(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[Error]:
    if not getattr(settings, "VXM_ENCRYPTION_KEYS", None):
        return []  # erp.E002, at deploy time
    problem = secrets.check_keys()
    if problem is None:
        return []
    # `problem` never quotes a key (erp/secrets.py).
    return [
        Error(
            problem,
            hint="Each comma-separated value must be a Fernet key from `vxm erp generate-key`.",
            id="erp.E003",
        )
    ]


@register(Tags.security, deploy=True)
def check_secret_key(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    key = str(getattr(settings, "SECRET_KEY", ""))
    if key != DEVELOPMENT_SECRET_KEY and not key.startswith(("insecure-", "django-insecure-")):
        return []
    return [
        Error(
            "SECRET_KEY is the development default: sessions, password-reset links and "
            "CSRF tokens could be forged by anyone who reads this repository.",
            hint="Set VXM_SECRET_KEY to 50 or more random characters, e.g. "
            '`python -c "import secrets; print(secrets.token_urlsafe(50))"`.',
            id="erp.E004",
        )
    ]


@register(Tags.security, deploy=True)
def check_keys_are_distinct(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    key = str(getattr(settings, "SECRET_KEY", ""))
    if key and key in (getattr(settings, "VXM_ENCRYPTION_KEYS", None) or []):
        return [
            Error(
                "SECRET_KEY is also an encryption key: leaking one must not leak the other.",
                hint="Generate a separate key with `vxm erp generate-key`.",
                id="erp.E005",
            )
        ]
    return []


@register(Tags.security)
def check_allowed_ports(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    from django.core.exceptions import ImproperlyConfigured

    from erp.url_guard import allowed_ports_from_settings

    try:
        allowed_ports_from_settings()
    except ImproperlyConfigured as e:
        return [Error(str(e), hint="A list of port numbers, e.g. [443, 8443].", id="erp.E006")]
    return []
