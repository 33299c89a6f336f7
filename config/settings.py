"""Loupe settings. Everything comes from the environment; with no environment at all Loupe runs
locally on SQLite with files under ./var. Reading settings has no side effects."""

from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import (
    database_from_url,
    env_bool,
    env_bucket_list,
    env_int,
    env_list,
    env_origin,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LOUPE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string, "
            "or DEBUG=1 for local development."
        )
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"

# LOUPE_URL, the one address people open Loupe at (https://loupe.example.com), gives the host
# names, the trusted origin and, for https, secure cookies, the HTTPS redirect and HSTS; each of
# those can still be set on its own below.
LOUPE_URL = env_origin("LOUPE_URL")
_scheme, _host, _origin = LOUPE_URL or (None, None, None)
_HTTPS = _scheme == "https"
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [_host] if _host else (["127.0.0.1", "localhost"] if DEBUG else []))
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [_origin] if _origin else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "projects",
    "reviewer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "loupe.sqlite3"}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # Several processes (web, worker) write to the same file: wait for locks instead of failing
        # at once, and take the write lock up front so transactions never deadlock.
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        # WAL lets the worker write while pages read; NORMAL sync is still crash-safe in WAL mode
        # and keeps a review's commit off the disk-flush path (p95 7 ms instead of 40+ under load).
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Keep each web process's connection between requests, as on PostgreSQL: a new one per request
    # starts with SQLite's page cache empty, and closing the last one checkpoints the WAL, which
    # made a review save a third slower at 100,000 images.
    DATABASES["default"].setdefault("CONN_MAX_AGE", 600)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# Login rate limiting (django-axes): after LOUPE_LOGIN_FAILURE_LIMIT wrong passwords for one account,
# or from one address, logins for it are refused for LOUPE_LOGIN_COOLOFF_MINUTES; a success resets
# the count. Failures are kept in the database, so every web worker sees the same counts.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOUPE_LOGIN_FAILURE_LIMIT", 5)
LOUPE_LOGIN_COOLOFF_MINUTES = env_int("LOUPE_LOGIN_COOLOFF_MINUTES", 15)
if AXES_FAILURE_LIMIT < 1 or LOUPE_LOGIN_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured("LOUPE_LOGIN_FAILURE_LIMIT and LOUPE_LOGIN_COOLOFF_MINUTES must be at least 1")
AXES_COOLOFF_TIME = timedelta(minutes=LOUPE_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "config.client_ip.client_ip"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "projects:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_AUTOREFRESH = DEBUG
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

# Loupe's own files (uploaded images, exports, local model artifacts) go to the local media folder
# unless LOUPE_S3_BUCKET names a bucket, in which case django-storages keeps them in S3.
AWS_REGION = env_str("AWS_REGION", env_str("AWS_DEFAULT_REGION", "us-east-1"))
LOUPE_S3_BUCKET = env_str("LOUPE_S3_BUCKET")
# The buckets projects may name (image bucket, output location, published images); empty: any.
# The server's credentials may reach other teams' buckets: production should set it.
LOUPE_ALLOWED_BUCKETS = env_bucket_list("LOUPE_ALLOWED_BUCKETS")
if LOUPE_S3_BUCKET:
    default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": LOUPE_S3_BUCKET,
            "location": env_str("LOUPE_S3_PREFIX", "loupe"),
            "region_name": AWS_REGION,
            "signature_version": "s3v4",
            "querystring_expire": 900,
            "file_overwrite": False,
        },
    }
else:
    default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": default_storage,
    "staticfiles": {
        "BACKEND": "config.static_storage.StaticStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

TASKS = {
    "default": {
        "BACKEND": env_str("LOUPE_TASK_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}

# Seconds a reviewer holds an image before someone else may claim it.
LOUPE_LEASE_SECONDS = env_int("LOUPE_LEASE_SECONDS", 600)
if LOUPE_LEASE_SECONDS < 60:
    # The review page renews its lease every minute or so; a shorter lease would flap.
    raise ImproperlyConfigured("LOUPE_LEASE_SECONDS must be at least 60")
# Seconds without a heartbeat after which a running background run counts as dead (its worker
# was killed) and is marked failed; see projects/runs.py.
LOUPE_RUN_STALE_SECONDS = env_int("LOUPE_RUN_STALE_SECONDS", 300)
if LOUPE_RUN_STALE_SECONDS < 60:
    # Runs write a heartbeat every 10 seconds at most, and some steps take longer than that.
    raise ImproperlyConfigured("LOUPE_RUN_STALE_SECONDS must be at least 60")
# Request bodies other than files (a review save is a few KB); uploaded files larger than
# FILE_UPLOAD_MAX_MEMORY_SIZE go to a temporary file instead of memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 1000

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", _HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a TLS-terminating proxy (a load balancer), trust its X-Forwarded-Proto header.
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if _HTTPS else 0)
# HSTS for subdomains and browser preload lists commit every other site of the domain to HTTPS:
# that is the domain owner's decision, not Loupe's, so check --deploy is not asked to insist.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
# The container's health check asks over plain HTTP from inside.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Content-Security-Policy (config.middleware.ContentSecurityPolicyMiddleware): scripts and styles
# only from Loupe itself, no inline script; images also from S3 (presigned links). Style
# attributes stay allowed (label colors, progress widths); no script can be injected through them.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "style-src-attr 'unsafe-inline'",
    "img-src 'self' data: blob: https://*.amazonaws.com",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
LOG_LEVEL = env_str("LOG_LEVEL", "WARNING").upper()
LOUPE_LOG_LEVEL = env_str("LOUPE_LOG_LEVEL", "INFO").upper()
for _name, _level in (("LOG_LEVEL", LOG_LEVEL), ("LOUPE_LOG_LEVEL", LOUPE_LOG_LEVEL)):
    if _level not in LOG_LEVELS:
        raise ImproperlyConfigured(f"{_name} must be one of {', '.join(sorted(LOG_LEVELS))}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every line says when it happened (UTC, as TIME_ZONE) and which logger wrote it.
    "formatters": {"stamped": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "stamped"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"loupe": {"level": LOUPE_LOG_LEVEL}},
}
