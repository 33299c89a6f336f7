"""Settings read the environment strictly and work with no environment at all."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url, env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parent.parent

PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
    "'name': str(settings.DATABASES['default']['NAME']), 'debug': settings.DEBUG, "
    "'hosts': settings.ALLOWED_HOSTS, 'storage': settings.STORAGES['default']['BACKEND'], "
    "'media': str(settings.MEDIA_ROOT)}))"
)


def load_settings(**env):
    """Import the real settings in a fresh interpreter with only the given environment."""
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    return result


def test_no_environment_refuses_to_start_without_secret():
    result = load_settings()
    assert result.returncode == 1
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_alone_runs_on_sqlite_and_local_files():
    result = load_settings(DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "engine": "django.db.backends.sqlite3",
        "name": str(ROOT / "var" / "loupe.sqlite3"),
        "debug": True,
        "hosts": ["127.0.0.1", "localhost"],
        "storage": "django.core.files.storage.FileSystemStorage",
        "media": str(ROOT / "var" / "media"),
    }


def test_production_settings_from_environment():
    result = load_settings(
        SECRET_KEY="s3cret", ALLOWED_HOSTS="loupe.example.com, www.example.com",
        DATABASE_URL="postgres://app:p%40ss@db.internal:6543/loupe", LOUPE_S3_BUCKET="files",
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["debug"] is False
    assert values["hosts"] == ["loupe.example.com", "www.example.com"]
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["name"] == "loupe"
    assert values["storage"] == "storages.backends.s3.S3Storage"


def test_a_typo_in_a_boolean_stops_the_start():
    result = load_settings(DEBUG="ture")
    assert result.returncode == 1
    assert "DEBUG must be one of" in result.stderr


def test_database_url_parsing():
    assert database_from_url("postgres://app:p%40ss@db:6543/loupe?sslmode=require") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "loupe",
        "USER": "app",
        "PASSWORD": "p@ss",
        "HOST": "db",
        "PORT": "6543",
        "OPTIONS": {"sslmode": "require", "server_side_binding": True, "prepare_threshold": 5},
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
    }
    assert database_from_url("sqlite:///:memory:")["NAME"] == ":memory:"


def test_database_url_turns_prepared_statements_off_or_tunes_them():
    off = database_from_url("postgres://db/loupe?server_side_binding=false")
    assert off["OPTIONS"] == {"server_side_binding": False, "prepare_threshold": 5}
    tuned = database_from_url("postgres://db/loupe?prepare_threshold=1")
    assert tuned["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": 1}


@pytest.mark.parametrize(
    "url, message",
    [("mysql://db/loupe", "must start with postgres://"), ("postgres://db", "must name a database"),
     ("postgres://db/loupe?server_side_binding=maybe", "server_side_binding must be true or false"),
     ("postgres://db/loupe?prepare_threshold=-1", "prepare_threshold must be a whole number")],
)
def test_database_url_errors(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        database_from_url(url)


def test_env_helpers(monkeypatch):
    monkeypatch.setenv("FLAG", "yes")
    monkeypatch.setenv("COUNT", "12")
    monkeypatch.setenv("HOSTS", "a, b,,c")
    monkeypatch.setenv("BAD_COUNT", "twelve")
    assert env_bool("FLAG") is True
    assert env_bool("UNSET_FLAG", True) is True
    assert env_int("COUNT", 0) == 12
    assert env_list("HOSTS") == ["a", "b", "c"]
    with pytest.raises(ImproperlyConfigured, match="BAD_COUNT must be an integer"):
        env_int("BAD_COUNT", 0)


@pytest.mark.parametrize("env, message", [
    ({"LOUPE_LEASE_SECONDS": "5"}, "LOUPE_LEASE_SECONDS must be at least 60"),
    ({"LOUPE_RUN_STALE_SECONDS": "10"}, "LOUPE_RUN_STALE_SECONDS must be at least 60"),
    ({"LOUPE_RUN_STALE_SECONDS": "5m"}, "LOUPE_RUN_STALE_SECONDS must be an integer; got '5m'"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of CRITICAL, DEBUG, ERROR, INFO, WARNING"),
])
def test_settings_refuse_values_that_cannot_work(env, message):
    result = load_settings(DEBUG="1", **env)
    assert result.returncode == 1
    assert message in result.stderr
