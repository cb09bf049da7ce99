"""Settings, all from the environment (12-factor).

Embedded defaults make `vxm` work on a fresh machine: a SQLite file under var/,
the database-backed task queue, debug off unless VXM_DEBUG=1.
"""

import os
import tempfile
from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VXM_VAR_DIR", BASE_DIR / "var"))


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = _env_bool("VXM_DEBUG")
# A development key is only acceptable on a developer's machine: `vxm check
# --deploy` rejects it (erp/checks.py, which knows this exact value).
SECRET_KEY = os.environ.get("VXM_SECRET_KEY", "insecure-development-key-change-me")
ALLOWED_HOSTS = _env_list("VXM_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = _env_list("VXM_CSRF_TRUSTED_ORIGINS")
# A refused form gets the product's page (Spanish, a way back), not Django's.
CSRF_FAILURE_VIEW = "vxm.views.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tasks_db",
    "crontask",
    "vxm",
    "stores",
    "catalog",
    "erp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: a logged-in person's chosen language beats the
    # cookie and Accept-Language that LocaleMiddleware went by (vxm/language.py).
    "vxm.language.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

# Only our own scripts, styles and images: no inline script or style attribute
# runs, so markup slipped into a page (an item name, text from an ERP) can do
# nothing even if escaping ever failed somewhere.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

ROOT_URLCONF = "vxm.urls"
WSGI_APPLICATION = "vxm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "stores.context_processors.current_store",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if not DATABASE_URL:
    # The embedded default (also for DATABASE_URL set but empty, as `env` files
    # often leave it): a SQLite file under var/, created on first use.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASE_URL = f"sqlite:///{VAR_DIR / 'vxm.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=int(os.environ.get("VXM_DB_CONN_MAX_AGE", "0"))
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; IMMEDIATE makes a
    # writing transaction take the write lock up front instead of failing with
    # "database is locked" half way; the timeout lets writers queue politely.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # Tests use a file too, not shared-cache memory: its locking is what the
    # product really gets (concurrent workers, a killed process).
    # One file per test process, so parallel test runs never share one.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"vxm-test-{os.getpid()}.sqlite3")
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": os.environ.get("VXM_TASK_BACKEND", "django_tasks_db.DatabaseBackend"),
        # "full": big runs (erp/tasks.py), served by workers of their own.
        "QUEUES": ["default", "full"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Spanish (Argentina) is the default and the source language: the msgids in the
# code are the Spanish text, and only English has a catalog (locale/en/, compiled
# by scripts/bootstrap; docs/architecture.md, "Languages"). Names are written in
# their own language, as a person looking for theirs reads them.
LANGUAGE_CODE = "es-ar"
LANGUAGES = [("es-ar", "Español"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "America/Argentina/Buenos_Aires"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# ---- HTTPS, cookies, browser protections (docs/security.md) ------------------------
# VXM_HTTPS=1 says the site is served over https only, as in production: it turns
# on the redirect to https, HSTS and secure-only cookies, which is what
# `vxm check --deploy` asks for. Off by default because the demo and a developer's
# server are plain http on 127.0.0.1, where a secure-only cookie is never sent back
# and logging in would silently fail.
VXM_HTTPS = _env_bool("VXM_HTTPS")
SECURE_SSL_REDIRECT = VXM_HTTPS
SESSION_COOKIE_SECURE = _env_bool("VXM_SECURE_COOKIES", VXM_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
# HSTS: browsers refuse plain http for this host for a year. Sent only on https
# responses, so it needs VXM_HTTPS; each part can be turned down from the
# environment (VXM_HSTS_SECONDS=0 disables it), at the cost of a deploy warning.
SECURE_HSTS_SECONDS = int(os.environ.get("VXM_HSTS_SECONDS", "31536000" if VXM_HTTPS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("VXM_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = _env_bool("VXM_HSTS_PRELOAD", True)
# VXM_BEHIND_PROXY=1 only when a reverse proxy terminates TLS and sets
# X-Forwarded-Proto and X-Forwarded-For itself (overwriting what clients send):
# then Django trusts the proxy's word that the request was https, and the login
# rate limit counts per the client address the proxy saw (vxm/auth.py). Without a
# proxy a client could forge both headers, so it is off by default.
VXM_BEHIND_PROXY = _env_bool("VXM_BEHIND_PROXY")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if VXM_BEHIND_PROXY else None
# Django's defaults, spelled out because they are part of the security posture.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Failed logins allowed within the window, counted in the database (vxm/auth.py,
# docs/security.md): for one username from one address (or one known browser),
# for one username from browsers it never logged in from, and distinct usernames
# failed from one address (spraying).
VXM_LOGIN_FAILURES_PER_ACCOUNT = int(os.environ.get("VXM_LOGIN_FAILURES_PER_ACCOUNT", "5"))
VXM_LOGIN_FAILURES_PER_USERNAME = int(os.environ.get("VXM_LOGIN_FAILURES_PER_USERNAME", "10"))
VXM_LOGIN_USERNAMES_PER_ADDRESS = int(os.environ.get("VXM_LOGIN_USERNAMES_PER_ADDRESS", "10"))
VXM_LOGIN_FAILURE_WINDOW_MINUTES = int(os.environ.get("VXM_LOGIN_FAILURE_WINDOW_MINUTES", "15"))

# ERP integration settings.
# Fernet keys, comma-separated: the first encrypts, all decrypt (see docs/security.md).
VXM_ENCRYPTION_KEYS = _env_list("VXM_ENCRYPTION_KEYS")
# Development, demo and tests only: lets an ERP URL be http:// and point at this machine.
VXM_ALLOW_LOCAL_ERP = _env_bool("VXM_ALLOW_LOCAL_ERP")
# Ports an ERP URL may use, comma-separated (unset: 443 and 8443). A value that is
# not a port is kept as written, so `vxm check` names it (erp.E006) instead of
# every process failing to start.
if _ports := _env_list("VXM_ERP_ALLOWED_PORTS"):
    VXM_ERP_ALLOWED_PORTS = [int(p) if p.isdigit() else p for p in _ports]
# CSV files larger than this (about 20,000 rows) are applied by a background task,
# not in the request.
VXM_CSV_INLINE_BYTES = int(os.environ.get("VXM_CSV_INLINE_BYTES", str(1024 * 1024)))
# Page size asked of NonSistemas (the contract's maximum is 1000). Smaller only in
# tests that need many pages from a small catalog.
VXM_NONSISTEMAS_PAGE_SIZE = int(os.environ.get("VXM_NONSISTEMAS_PAGE_SIZE", "1000"))
# The longest an update may take before it stops as failed (300,000 items at the
# contract's 10 requests a second take about a minute).
VXM_ERP_RUN_SECONDS = int(os.environ.get("VXM_ERP_RUN_SECONDS", "3600"))
# Politeness per ERP host, shared by all workers (erp/pacing.py): requests a second
# (the NonSistemas contract allows 10), runs at once, and how long a run's place
# outlives its last sign of life. 0 turns the rate or the cap off.
VXM_ERP_HOST_RATE = float(os.environ.get("VXM_ERP_HOST_RATE", "10"))
VXM_ERP_HOST_CONCURRENCY = int(os.environ.get("VXM_ERP_HOST_CONCURRENCY", "4"))
VXM_ERP_HOST_LEASE_SECONDS = float(os.environ.get("VXM_ERP_HOST_LEASE_SECONDS", "90"))

# Emails to store admins (erp/notifications.py: automatic updates that fail, pause
# or recover). With VXM_EMAIL_HOST set they go through that SMTP server; without
# it they are printed on the process's console (the demo, a developer's machine).
VXM_EMAIL_HOST = os.environ.get("VXM_EMAIL_HOST", "").strip()
if VXM_EMAIL_HOST:
    _email_ssl = _env_bool("VXM_EMAIL_USE_SSL")
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": VXM_EMAIL_HOST,
                "port": int(os.environ.get("VXM_EMAIL_PORT", "465" if _email_ssl else "587")),
                "username": os.environ.get("VXM_EMAIL_USER", ""),
                "password": os.environ.get("VXM_EMAIL_PASSWORD", ""),
                "use_ssl": _email_ssl,
                "use_tls": _env_bool("VXM_EMAIL_USE_TLS", default=not _email_ssl),
                "timeout": int(os.environ.get("VXM_EMAIL_TIMEOUT", "20")),
            },
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
DEFAULT_FROM_EMAIL = os.environ.get("VXM_EMAIL_FROM", "VentasxMayor <no-responder@localhost>")
# The address of the panel as the admins reach it, for the links in emails.
VXM_BASE_URL = os.environ.get("VXM_BASE_URL", "http://localhost:8000").strip()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("VXM_LOG_LEVEL", "WARNING")},
    "loggers": {
        "vxm": {"level": os.environ.get("VXM_LOG_LEVEL", "INFO")},
        "erp": {"level": os.environ.get("VXM_LOG_LEVEL", "INFO")},
    },
}

# Retention (vxm/retention.py, `vxm prune`): item history, update runs and finished
# CSV imports older than this many days are deleted; the ERP audit log after
# VXM_AUDIT_RETENTION_DAYS (never before the data it explains; 0 keeps it forever).
VXM_RETENTION_DAYS = int(os.environ.get("VXM_RETENTION_DAYS", "400"))
VXM_AUDIT_RETENTION_DAYS = int(os.environ.get("VXM_AUDIT_RETENTION_DAYS", "1825"))
