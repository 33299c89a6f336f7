"""Loupe served by gunicorn on 127.0.0.1 for the HTTP benchmarks, in production mode unless asked.

    with serve(database_url, {"LOUPE_VAR_DIR": folder}) as base_url:   # "http://127.0.0.1:PORT"
        ...

The server gets DEBUG=0, ALLOWED_HOSTS=127.0.0.1 and a throwaway SECRET_KEY; `environment` overrides
any of them. In production mode the static files manifest must exist (templates name hashed files),
so collectstatic runs first into the checkout's ./staticfiles (ignored by git), as the image build does.
"""

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60
# base URL -> gunicorn master's pid, while serve() runs (for server_cpu_seconds).
RUNNING = {}


def free_port():
    """A port nobody listens on right now (gunicorn binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(database_url, environment):
    settings = {"DATABASE_URL": database_url, "SECRET_KEY": "bench-only-not-secret", "DEBUG": "0",
                "ALLOWED_HOSTS": "127.0.0.1", "DJANGO_SETTINGS_MODULE": "config.settings"}
    return {**os.environ, **settings, **(environment or {})}


def collect_static(env):
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
                   cwd=ROOT, env=env, check=True)


def wait_until_healthy(base_port, process, log_path):
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{tail(log_path)}")
        connection = http.client.HTTPConnection("127.0.0.1", base_port, timeout=5)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer /healthz within {START_TIMEOUT_S} s:\n{tail(log_path)}")


def tail(path, lines=30):
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def serve(database_url, environment=None, *, workers=1, threads=1):
    """Yields the base URL ("http://127.0.0.1:PORT") of gunicorn serving Loupe on database_url.

    environment: extra or overriding settings variables for the server (e.g. {"DEBUG": "1"}).
    The server is stopped (SIGTERM, then SIGKILL after 10 s) when the block ends, however it ends.
    """
    env = server_environment(database_url, environment)
    if env.get("DEBUG", "0").strip().lower() not in {"1", "true", "yes", "on"}:
        collect_static(env)
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="loupe-gunicorn-", suffix=".log", delete=False) as log:
        log_path = log.name
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--threads", str(threads), "--timeout", "300",
             "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(port, process, log_path)
        RUNNING[base_url] = process.pid
        yield base_url
    finally:
        RUNNING.pop(base_url, None)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        Path(log_path).unlink(missing_ok=True)


def server_cpu_seconds(base_url):
    """CPU seconds the server at base_url (gunicorn's master and workers) has used so far; None where
    /proc cannot tell (not Linux). Differences of two readings are what requests cost the server,
    whatever else shares the machine's cores."""
    pid = RUNNING.get(base_url)
    if pid is None:
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ticks = sum(_cpu_ticks(p) for p in [pid, *map(int, children)])
    except OSError:
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid):
    # Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def request_once(host, port, method, path, *, body=None, headers=None, timeout=60):
    """(response, body bytes) of one request on a connection of its own: the benches measure what a
    browser's first request costs, connect included."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()
