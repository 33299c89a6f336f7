"""Strict readers for settings that come from the environment.

Each helper returns the default when the variable is unset and raises ImproperlyConfigured,
naming the variable, when it is set to something it cannot parse: a typo in production must
stop the start, not silently fall back.
"""

import os
import re
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}")


def env_int(name, default):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer; got {raw!r}") from None


def env_list(name, default=()):
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


# S3's bucket naming rules: 3-63 characters, lowercase letters, digits, dots and hyphens, starting
# and ending with a letter or digit, no "..", not an IP address.
BUCKET_NAME = re.compile(r"^(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def env_bucket_list(name):
    """A comma-separated list of S3 bucket names; every item must be one (no s3://, no prefix)."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return []
    items = [item.strip() for item in raw.split(",")]
    bad = [item for item in items if not BUCKET_NAME.match(item)]
    if bad:
        raise ImproperlyConfigured(
            f"{name} must be a comma-separated list of S3 bucket names (no s3://, no prefix); "
            f"these are not: {', '.join(repr(item) for item in bad)}")
    return items


def env_origin(name):
    """An origin such as https://loupe.example.com (scheme and host, optional port, nothing else),
    as (scheme, host, origin); None when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/")
            or parts.query or parts.fragment or parts.username or parts.password or port == -1):
        raise ImproperlyConfigured(
            f"{name} must be the address people open Loupe at, such as https://loupe.example.com "
            f"(scheme and host, no path); got {raw!r}")
    origin = f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "")
    return parts.scheme, parts.hostname, origin


def database_from_url(url):
    """Turn postgres://user:pass@host:port/name or sqlite:///path into a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path[1:]) or ":memory:"}
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL must start with postgres:// or sqlite:///; got {parts.scheme!r}"
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL must name a database, e.g. postgres://host/loupe")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": _postgres_options(dict(parse_qsl(parts.query))),
        # A new connection starts cold: PostgreSQL loads its catalog caches and plpgsql functions
        # again (the first statement planned in 10 ms here) and the prepared statements are gone.
        # Ten minutes keeps that to one request in thousands; health checks replace a dead one.
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
    }


def _postgres_options(query):
    """Connection options from the URL's query (?sslmode=require...), with prepared statements on.

    Server-side binding lets psycopg prepare a statement the fifth time the same one runs on a
    connection, so PostgreSQL stops parsing and planning the review save's twenty-odd queries on
    every request (a save's p95 went from 22 to 15 ms). ?server_side_binding=false turns it off,
    e.g. behind PgBouncer in transaction mode before 1.21, which cannot keep prepared statements;
    ?prepare_threshold=N changes after how many runs a statement is prepared.
    """
    options = {"server_side_binding": True, "prepare_threshold": 5, **query}
    binding = str(options["server_side_binding"]).strip().lower()
    if binding not in TRUE | FALSE:
        raise ImproperlyConfigured(
            f"DATABASE_URL: server_side_binding must be true or false, not {binding!r}")
    options["server_side_binding"] = binding in TRUE
    threshold = str(options["prepare_threshold"]).strip()
    if not threshold.isdigit():
        raise ImproperlyConfigured(
            f"DATABASE_URL: prepare_threshold must be a whole number, not {threshold!r}")
    options["prepare_threshold"] = int(threshold)
    return options
