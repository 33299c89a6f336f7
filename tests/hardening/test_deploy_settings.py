"""Issue 15, item 8: the Content-Security-Policy header, LOUPE_URL deriving hosts, the trusted
origin, secure cookies, the HTTPS redirect and HSTS, and `check --deploy` clean with the documented
production settings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_origin
from tests.factories import make_user

ROOT = Path(__file__).resolve().parents[2]
# The production settings README.md documents (docker/.env.example has the same).
PRODUCTION = {
    "SECRET_KEY": "x7#k2p!v9q$w4z@m1n8b5c3r6t0y2u4i6o8p0a2s4d6f8g0h2j4k6l",
    "LOUPE_URL": "https://loupe.example.com",
    "BEHIND_TLS_PROXY": "1",
    "DATABASE_URL": "sqlite:///:memory:",
}


@pytest.mark.django_db
def test_every_page_carries_a_strict_content_security_policy(client):
    client.force_login(make_user("rita"))
    for url in ("/", "/login/", "/review/my-work/"):
        policy = client.get(url)["Content-Security-Policy"]
        directives = dict(part.split(" ", 1) for part in policy.split("; "))
        assert directives["script-src"] == "'self'"
        assert directives["default-src"] == "'self'"
        assert directives["object-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in directives["style-src"] + directives["script-src"]


def test_no_template_has_an_inline_script_or_event_handler():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for line in text.splitlines():
            if "<script" in line and "src=" not in line and 'type="application/json"' not in line:
                offenders.append((path.name, line.strip()))
            if " onclick=" in line or " onload=" in line or "javascript:" in line or "hx-on" in line:
                offenders.append((path.name, line.strip()))
    assert offenders == []


@pytest.mark.parametrize(("raw", "parsed"), [
    ("https://loupe.example.com", ("https", "loupe.example.com", "https://loupe.example.com")),
    ("https://loupe.example.com/", ("https", "loupe.example.com", "https://loupe.example.com")),
    ("http://10.0.0.5:8000", ("http", "10.0.0.5", "http://10.0.0.5:8000")),
])
def test_loupe_url_is_parsed_strictly(monkeypatch, raw, parsed):
    monkeypatch.setenv("LOUPE_URL", raw)
    assert env_origin("LOUPE_URL") == parsed


@pytest.mark.parametrize("raw", ["loupe.example.com", "https://loupe.example.com/app", "ftp://x",
                                 "https://u:p@loupe.example.com", "https://loupe.example.com:99999"])
def test_a_malformed_loupe_url_stops_the_start(monkeypatch, raw):
    monkeypatch.setenv("LOUPE_URL", raw)
    with pytest.raises(ImproperlyConfigured) as info:
        env_origin("LOUPE_URL")
    assert str(info.value).startswith("LOUPE_URL must be the address people open Loupe at")


def _settings_under(env):
    code = ("import django, json; from django.conf import settings as s; django.setup(); print(json.dumps("
            "[s.ALLOWED_HOSTS, s.CSRF_TRUSTED_ORIGINS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS]))")
    clean = {k: v for k, v in os.environ.items() if k not in {
        "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SECURE_COOKIES", "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS", "DEBUG", "LOUPE_URL"}}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env}, check=True)
    import json

    return json.loads(result.stdout)


def test_loupe_url_derives_hosts_origins_cookies_redirect_and_hsts():
    assert _settings_under(PRODUCTION) == [
        ["loupe.example.com"], ["https://loupe.example.com"], True, True, True, 31_536_000]
    plain = dict(PRODUCTION, LOUPE_URL="http://10.0.0.5:8000")
    assert _settings_under(plain) == [["10.0.0.5"], ["http://10.0.0.5:8000"], False, False, False, 0]


def test_check_deploy_is_clean_with_the_documented_production_settings():
    # The browser tests' DJANGO_ALLOW_ASYNC_UNSAFE is for the test process, never a deployment.
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, capture_output=True, text=True, env={**clean, **PRODUCTION})
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "System check identified no issues (2 silenced).\n"


@pytest.mark.django_db
def test_new_projects_take_their_region_from_aws_region(settings):
    from django.core.management import call_command

    from projects.models import Project

    settings.AWS_REGION = "eu-west-1"
    call_command("create_project", "logos", "--labels", "a", stdout=__import__("io").StringIO())
    call_command("create_project", "other", "--labels", "a", "--region", "us-west-2",
                 stdout=__import__("io").StringIO())
    assert dict(Project.objects.values_list("slug", "region")) == {"logos": "eu-west-1", "other": "us-west-2"}


@pytest.mark.django_db
def test_the_health_endpoint_answers_without_login_and_writes_nothing(client):
    response = client.get("/healthz")
    assert (response.status_code, response.content, response["Content-Type"]) == (200, b"ok", "text/plain")
    assert "Set-Cookie" not in response.headers
    assert client.post("/healthz").status_code == 405


def test_log_lines_carry_timestamps():
    from django.conf import settings

    assert settings.LOGGING["formatters"]["stamped"]["format"].startswith("%(asctime)s ")
    assert settings.LOGGING["handlers"]["console"]["formatter"] == "stamped"
