"""Issue 15, item 12: `manage.py worker_health`, the worker container's health check."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from projects.proposals.tasks import run_proposal_run
from tests.factories import make_iteration, make_proposal_run

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def waiting_task(seconds):
    """A READY task record enqueued `seconds` ago that no worker has claimed."""
    result = run_proposal_run.enqueue(run_id=0)
    DBTaskResult.objects.filter(pk=result.id).update(
        enqueued_at=timezone.now() - timedelta(seconds=seconds))


def health(*args):
    from io import StringIO

    out = StringIO()
    call_command("worker_health", *args, stdout=out)
    return out.getvalue()


def test_an_idle_queue_is_healthy(database_tasks):
    assert health() == "healthy\n"


def test_a_task_waiting_briefly_is_healthy(database_tasks):
    waiting_task(200)
    assert health("--max-wait", "300") == "healthy\n"


def test_a_task_waiting_too_long_with_no_worker_alive_is_unhealthy(database_tasks):
    waiting_task(400)
    with pytest.raises(CommandError) as error:
        health("--max-wait", "300")
    assert str(error.value) == (
        "unhealthy: a task has waited 400 s for a worker and no worker has shown a sign of life for "
        "over 300 s; restart the worker (`manage.py db_worker`)")


def test_a_worker_busy_with_a_long_run_that_beats_is_healthy(database_tasks):
    waiting_task(400)
    make_proposal_run(make_iteration(), heartbeat_at=timezone.now() - timedelta(seconds=20))
    assert health("--max-wait", "300") == "healthy\n"


def test_a_worker_that_just_finished_a_task_is_healthy(database_tasks):
    waiting_task(400)
    run_proposal_run.enqueue(run_id=0)
    latest = DBTaskResult.objects.order_by("-enqueued_at").first()
    DBTaskResult.objects.filter(pk=latest.pk).update(
        status=TaskResultStatus.SUCCESSFUL, started_at=timezone.now() - timedelta(seconds=30),
        finished_at=timezone.now() - timedelta(seconds=10))
    assert health("--max-wait", "300") == "healthy\n"


def test_an_unreachable_database_is_unhealthy():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
           # Nothing listens on port 1: the connection is refused at once.
           "DATABASE_URL": "postgres://loupe@127.0.0.1:1/loupe"}
    result = subprocess.run([sys.executable, "manage.py", "worker_health"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("CommandError: unhealthy: the database is unreachable (")
    assert "check DATABASE_URL and that the database server is up" in result.stderr
