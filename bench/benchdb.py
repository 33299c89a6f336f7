"""The throwaway database every benchmark runs in, and Django set up on it.

Without a URL: a SQLite file in a temporary folder. With a postgres:// URL: a fresh database created
beside the one the URL names (so a bench never touches real data) and dropped afterwards.
"""

import os
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def scratch_database(server_url=""):
    """Yields (database URL, engine name) and removes the database afterwards."""
    if not server_url:
        with tempfile.TemporaryDirectory(prefix="loupe-bench-") as folder:
            yield f"sqlite:///{folder}/bench.sqlite3", "sqlite"
        return
    import psycopg

    name = f"loupe_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path="/" + name)), "postgresql"
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(database_url, **environment):
    """Django on the given database, migrated. environment: extra settings variables."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.update(environment)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
