"""Issue 15, item 10: a worker SIGKILLed mid-run loses nothing and duplicates nothing.

Real processes on a scratch database (SQLite file or a PostgreSQL database beside the test one,
whichever the suite runs on): a `db_worker` killed in the middle of a proposal run, the run
reconciled and started again, must end with exactly what one clean run stores; an export killed
while writing must leave no manifest or a complete one, never a truncated one. The processes are
in tests/hardening/fault_process.py.
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

from tests.hardening.fault_process import expected_detections

ROOT = Path(__file__).resolve().parents[2]
IMAGES = 150
TIMEOUT = 60


class Server:
    """The database server the suite runs on: scratch databases are made there, from a template
    migrated once per module (migrating takes longer than any of these tests)."""

    def __init__(self, folder):
        default = settings.DATABASES["default"]
        self.folder = folder
        self.postgres = default["ENGINE"].endswith("postgresql")
        if self.postgres:
            self.server = {"host": default["HOST"] or "localhost", "port": default["PORT"] or 5432,
                           "user": default["USER"], "password": default["PASSWORD"]}

    def url(self, name):
        if not self.postgres:
            return f"sqlite:///{self.folder / name}"
        server = self.server
        return f"postgres://{server['user']}:{server['password']}@{server['host']}:{server['port']}/{name}"

    def admin(self, sql):
        import psycopg

        with psycopg.connect(dbname="postgres", autocommit=True, **self.server) as connection:
            connection.execute(sql)

    def create(self, name, template=None):
        if self.postgres:
            self.admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        elif template:
            shutil.copyfile(self.folder / template, self.folder / name)

    def drop(self, name):
        if self.postgres:
            self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def query(self, name, sql):
        if self.postgres:
            import psycopg

            with psycopg.connect(dbname=name, **self.server) as connection:
                return connection.execute(sql).fetchall()
        with sqlite3.connect(self.folder / name) as connection:
            return connection.execute(sql).fetchall()


def environment(url, folder):
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.hardening.fault_settings",
            "LOUPE_VAR_DIR": str(folder / "var"), "FAULT_BUCKET_DIR": str(folder / "s3")}


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """(Server, the name of a migrated database to copy)."""
    server = Server(tmp_path_factory.mktemp("fault-databases"))
    name = f"loupe_faults_{uuid.uuid4().hex[:8]}"
    server.create(name)
    try:
        subprocess.run([sys.executable, "-m", "tests.hardening.fault_process", "migrate"], cwd=ROOT,
                       env=environment(server.url(name), server.folder), check=True, timeout=TIMEOUT * 2)
        yield server, name
    finally:
        server.drop(name)


@pytest.fixture
def scratch(migrated, tmp_path):
    """(run a fault_process command, start one, run one SQL query) on a fresh migrated database."""
    server, template = migrated
    name = f"loupe_faults_{uuid.uuid4().hex[:8]}"
    server.create(name, template=template)
    env = environment(server.url(name), tmp_path)
    started = []

    def start(*arguments):
        process = subprocess.Popen([sys.executable, "-m", "tests.hardening.fault_process", *arguments],
                                   cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        started.append(process)
        return process

    def run(*arguments):
        process = start(*arguments)
        out, err = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, err
        return out

    try:
        yield run, start, lambda sql: server.query(name, sql)
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
        server.drop(name)


def wait_until(condition, what, process):
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert process.poll() is None, f"the process ended before {what}: {process.communicate()[1]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def kill(process):
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=TIMEOUT)


def one_clean_run():
    return Counter((position, label, box, confidence) for position in range(IMAGES)
                   for label, box, confidence in expected_detections(position))


def stored_proposals(query):
    rows = query(
        "SELECT i.position, l.name, p.left, p.top, p.width, p.height, p.confidence "
        "FROM projects_proposal p JOIN projects_image i ON i.id = p.image_id "
        "JOIN projects_labelclass l ON l.id = p.label_id")
    return Counter((position, label, (left, top, width, height), confidence)
                   for position, label, left, top, width, height, confidence in rows)


def run_states(query, table):
    return [status for (status,) in query(f"SELECT status FROM {table} ORDER BY id")]


def test_a_proposal_run_killed_mid_run_ends_as_one_clean_run(scratch):
    run, start, query = scratch
    run("setup", str(IMAGES))
    run("propose")
    outcomes = lambda: query("SELECT count(*) FROM projects_proposaloutcome")[0][0]  # noqa: E731

    worker = start("worker")
    wait_until(lambda: outcomes() >= 10, "the worker to store its first outcomes", worker)
    kill(worker)
    done_when_killed = outcomes()
    assert 10 <= done_when_killed < IMAGES, "the kill must land mid-run: make the stand-in model slower"
    assert run_states(query, "projects_proposalrun") == ["running"]

    run("reconcile")
    assert run_states(query, "projects_proposalrun") == ["failed"]
    run("propose")
    run("worker")

    assert run_states(query, "projects_proposalrun") == ["failed", "succeeded"]
    assert query("SELECT count(*), count(DISTINCT image_id), sum(CASE WHEN ok THEN 1 ELSE 0 END) "
                 "FROM projects_proposaloutcome")[0] == (IMAGES, IMAGES, IMAGES)
    assert stored_proposals(query) == one_clean_run()
    # The second run proposed only on what the first had not finished.
    assert query("SELECT r.done FROM projects_proposalrun r ORDER BY id")[1] == (IMAGES,)
    assert query("SELECT count(*) FROM projects_proposaloutcome o JOIN projects_proposalrun r "
                 "ON r.id = o.run_id WHERE r.status = 'succeeded'")[0] == (IMAGES - done_when_killed,)


def manifest_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_export_killed_mid_write_leaves_no_truncated_manifest(scratch, tmp_path):
    run, start, query = scratch
    run("setup", str(IMAGES), "--proposed")
    folder = tmp_path / "exports"
    folder.mkdir()
    output = folder / "faults.manifest"

    export = start("export", str(output))
    written = lambda: sum(path.stat().st_size for path in folder.glob(".loupe-*.part"))  # noqa: E731
    wait_until(lambda: written() > 0, "the export to start writing", export)
    kill(export)
    assert not output.exists()
    assert run_states(query, "projects_export") == ["running"]

    run("reconcile")
    assert run_states(query, "projects_export") == ["failed"]
    run("export", str(output))
    assert run_states(query, "projects_export") == ["failed", "succeeded"]
    lines = manifest_lines(output)
    with_boxes = [position for position in range(IMAGES) if expected_detections(position)]
    assert [line["source-ref"] for line in lines] == [
        f"s3://faults/v1/img-{position:05d}.jpg" for position in with_boxes]
    assert query("SELECT lines FROM projects_export ORDER BY id")[1] == (len(with_boxes),)


def test_a_publish_killed_between_its_files_leaves_none_once_published_again(scratch, tmp_path):
    """A split publish uploads -train then -test: a worker killed in between has put one half in S3.
    The next publish of the iteration deletes it, so S3 never keeps half of an export."""
    run, start, query = scratch
    run("setup", str(IMAGES), "--proposed")
    run("publish")
    bucket = tmp_path / "s3" / "out"
    objects = lambda: sorted(path.name for path in bucket.rglob("*.manifest"))  # noqa: E731

    worker = start("worker")
    wait_until(lambda: objects(), "the first half of the publish to reach S3", worker)
    kill(worker)
    [half] = objects()
    assert half.endswith("-train.manifest")
    assert all(manifest_lines(path) for path in bucket.rglob("*.manifest"))

    run("reconcile")
    assert run_states(query, "projects_export") == ["failed"]
    run("publish")
    run("worker")
    assert run_states(query, "projects_export") == ["failed", "succeeded"]
    [(report,)] = query("SELECT report FROM projects_export WHERE status = 'succeeded'")
    files = (json.loads(report) if isinstance(report, str) else report)["files"]
    assert objects() == sorted(file["uri"].rsplit("/", 1)[1] for file in files)
    lines = {file["role"]: manifest_lines(bucket / file["uri"].split("/out/", 1)[1]) for file in files}
    assert [len(lines["train"]), len(lines["test"])] == [file["lines"] for file in files]
    with_boxes = [position for position in range(IMAGES) if expected_detections(position)]
    assert len(lines["train"]) + len(lines["test"]) == len(with_boxes)
