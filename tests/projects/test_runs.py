from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from projects import runs
from projects.images import importing
from projects.images.tasks import import_images, start_upload
from projects.models import Export, ImportRun, ProposalRun, RunStatus, TrainingRun
from projects.proposals.runs import ProposalRunError
from tests.factories import (
    image_bytes,
    make_export,
    make_import_run,
    make_iteration,
    make_project,
    make_proposal_run,
    make_training_run,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
STALE = 300
WORKER_STOPPED = (
    "the background worker stopped this run (its task failed without finishing it): make sure "
    "`manage.py db_worker` is running, then start the run again"
)


def silent_for(minutes):
    return "the background worker stopped: no sign of life from this run for " \
           f"{minutes} min; start the worker again (`manage.py db_worker`), then start the run again"


def ago(seconds):
    return NOW - timedelta(seconds=seconds)


def with_task(run, status=TaskResultStatus.READY, started_at=None):
    """Queue the run's task on the database backend and put its record in `status`."""
    runs.enqueue(run, import_images, run_id=run.pk)
    DBTaskResult.objects.filter(pk=run.task_id).update(status=status, started_at=started_at)
    return run


def state(run):
    run.refresh_from_db()
    return run.status, run.error


# --- begin, heartbeat, finish, failing ---------------------------------------------------------------


def test_begin_marks_the_run_running_and_keeps_a_resumed_runs_first_start():
    run = make_import_run(make_iteration())
    runs.begin(run, imported=2)
    run.refresh_from_db()
    assert (run.status, run.imported, run.heartbeat_at) == (RunStatus.RUNNING, 2, run.started_at)
    first = run.started_at
    runs.begin(run)
    run.refresh_from_db()
    assert run.started_at == first
    assert run.heartbeat_at > first


def test_heartbeat_writes_at_most_every_ten_seconds_with_the_counts_so_far():
    run = make_import_run(make_iteration(), status=RunStatus.RUNNING)
    runs.heartbeat(run, now=NOW, imported=1)
    runs.heartbeat(run, now=NOW + timedelta(seconds=9), imported=2)
    assert ImportRun.objects.values_list("heartbeat_at", "imported").get() == (NOW, 1)
    runs.heartbeat(run, now=NOW + timedelta(seconds=10), imported=3)
    assert ImportRun.objects.values_list("heartbeat_at", "imported").get() == (
        NOW + timedelta(seconds=10), 3)


def test_finish_records_status_error_and_result_fields_in_one_write():
    run = make_import_run(make_iteration(), status=RunStatus.RUNNING)
    runs.finish(run, RunStatus.SUCCEEDED, imported=3, rejected=[["a.gif", "not an image"]])
    run.refresh_from_db()
    assert (run.status, run.error, run.imported, run.rejected) == (
        RunStatus.SUCCEEDED, "", 3, [["a.gif", "not an image"]])
    assert run.finished_at is not None


def test_failing_records_an_unexpected_error_with_its_type_and_raises_it():
    run = make_import_run(make_iteration(), status=RunStatus.RUNNING)
    with pytest.raises(KeyError), runs.failing(run):
        raise KeyError("width")
    assert state(run) == (RunStatus.FAILED, "KeyError: 'width'")
    assert run.finished_at is not None


def test_failing_shows_loupes_own_errors_as_they_are_with_extra_fields():
    run = make_import_run(make_iteration(), status=RunStatus.RUNNING)
    with pytest.raises(ProposalRunError), \
            runs.failing(run, plain=(ProposalRunError,), fields=lambda error: {"imported": 4}):
        raise ProposalRunError("concurrency must be between 1 and 32")
    run.refresh_from_db()
    assert (run.status, run.error, run.imported) == (
        RunStatus.FAILED, "concurrency must be between 1 and 32", 4)


def test_failing_leaves_a_killed_run_for_reconcile():
    run = make_import_run(make_iteration(), status=RunStatus.RUNNING)
    with pytest.raises(KeyboardInterrupt), runs.failing(run):
        raise KeyboardInterrupt
    assert state(run) == (RunStatus.RUNNING, "")


def test_enqueue_records_the_database_task_id(database_tasks):
    run = make_import_run(make_iteration())
    runs.enqueue(run, import_images, run_id=run.pk)
    record = DBTaskResult.objects.get()
    assert (run.task_id, run.status) == (str(record.id), RunStatus.QUEUED)
    assert (record.status, record.args_kwargs["kwargs"]) == (TaskResultStatus.READY, {"run_id": run.pk})


# --- reconcile ---------------------------------------------------------------------------------------


def test_a_run_whose_task_record_failed_is_failed_at_once(database_tasks):
    run = with_task(make_import_run(make_iteration(), status=RunStatus.RUNNING, heartbeat_at=NOW),
                    TaskResultStatus.FAILED)
    marked = runs.reconcile(now=NOW, stale_after=STALE)
    assert [item.run.pk for item in marked] == [run.pk]
    assert state(run) == (RunStatus.FAILED, WORKER_STOPPED)
    assert run.finished_at == NOW


def test_a_run_whose_task_ended_without_finishing_it_is_failed(database_tasks):
    run = with_task(make_import_run(make_iteration(), created_at=NOW), TaskResultStatus.SUCCESSFUL)
    runs.reconcile(now=NOW, stale_after=STALE)
    assert state(run) == (RunStatus.FAILED, WORKER_STOPPED.replace("task failed", "task ended"))


def test_a_killed_worker_leaves_no_run_running_longer_than_the_interval(database_tasks):
    run = make_import_run(make_iteration())
    runs.enqueue(run, import_images, run_id=run.pk)
    DBTaskResult.objects.get().claim("worker-1")  # the worker takes the task,
    runs.begin(run)  # starts the run, then is killed: no heartbeat, no finish, record RUNNING
    alive = run.heartbeat_at
    assert runs.reconcile(now=alive + timedelta(seconds=STALE - 1), stale_after=STALE) == []
    assert state(run) == (RunStatus.RUNNING, "")
    marked = runs.reconcile(now=alive + timedelta(seconds=STALE + 1), stale_after=STALE)
    assert [item.run.pk for item in marked] == [run.pk]
    assert state(run) == (RunStatus.FAILED, silent_for(5))


@pytest.mark.parametrize("task_id", ["", "immediate-backend-id", "6f1c8a9e-4a0b-4c1e-9d3a-1b2c3d4e5f60"])
def test_a_run_without_a_task_record_is_failed_only_once_stale(task_id):
    iteration = make_iteration()
    fresh = make_import_run(iteration, task_id=task_id, status=RunStatus.RUNNING,
                            heartbeat_at=ago(STALE - 1))
    stale = make_import_run(iteration, task_id=task_id, created_at=ago(STALE + 60))
    marked = runs.reconcile(now=NOW, stale_after=STALE)
    assert [item.run.pk for item in marked] == [stale.pk]
    assert state(fresh) == (RunStatus.RUNNING, "")
    assert state(stale) == (RunStatus.FAILED, silent_for(6))


def test_a_short_silence_is_told_in_seconds():
    run = make_import_run(make_iteration(), status=RunStatus.RUNNING, heartbeat_at=ago(61))
    runs.reconcile(now=NOW, stale_after=60)
    assert state(run)[1] == (
        "the background worker stopped: no sign of life from this run for 61 s; start the worker "
        "again (`manage.py db_worker`), then start the run again")


def test_runs_waiting_for_a_worker_or_just_claimed_are_left_alone(database_tasks):
    iteration = make_iteration()
    waiting = with_task(make_import_run(iteration, created_at=ago(3600)))
    claimed = with_task(make_import_run(iteration, created_at=ago(3600)), TaskResultStatus.RUNNING,
                        started_at=ago(5))
    done = with_task(make_import_run(iteration, status=RunStatus.SUCCEEDED, created_at=ago(3600)),
                     TaskResultStatus.SUCCESSFUL)
    assert runs.reconcile(now=NOW, stale_after=STALE) == []
    assert [state(run)[0] for run in (waiting, claimed, done)] == [
        RunStatus.QUEUED, RunStatus.QUEUED, RunStatus.SUCCEEDED]


def test_reconcile_covers_every_kind_of_run():
    iteration = make_iteration()
    old = {"status": RunStatus.RUNNING, "heartbeat_at": ago(STALE * 2)}
    made = [make_import_run(iteration, **old), make_proposal_run(iteration, **old),
            make_training_run(iteration, **old), make_export(iteration, **old)]
    marked = runs.reconcile(now=NOW, stale_after=STALE)
    assert sorted((type(item.run).__name__, item.run.pk) for item in marked) == sorted(
        (type(run).__name__, run.pk) for run in made)
    for model in (ImportRun, ProposalRun, TrainingRun, Export):
        assert list(model.objects.values_list("status", "error")) == [(RunStatus.FAILED, silent_for(10))]


def test_a_dead_upload_import_has_its_staged_files_deleted(media_root):
    run = importing.stage_upload(iteration=make_iteration(), files=[
        ("a.jpg", SimpleUploadedFile("a.jpg", image_bytes()))])
    assert [path.name for path in media_root.rglob("*") if path.is_file()] == ["00000"]
    ImportRun.objects.filter(pk=run.pk).update(created_at=ago(STALE + 60), heartbeat_at=ago(STALE + 60))
    runs.reconcile(now=NOW, stale_after=STALE)
    run.refresh_from_db()
    assert (run.status, run.staged_files) == (RunStatus.FAILED, [])
    assert [path for path in media_root.rglob("*") if path.is_file()] == []


@pytest.mark.django_db(transaction=True)
def test_a_worker_interrupted_in_a_task_leaves_no_run_running(database_tasks, monkeypatch):
    """A second Ctrl+C stops db_worker inside the task: the record says FAILED, the run is still
    "running", and the next poll fails it without waiting for the interval."""
    iteration = make_iteration()

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(importing, "import_files", interrupted)
    run = start_upload(iteration=iteration, files=[("a.jpg", SimpleUploadedFile("a.jpg", image_bytes()))])
    database_tasks()
    assert DBTaskResult.objects.get().status == TaskResultStatus.FAILED
    assert state(run) == (RunStatus.RUNNING, "")
    runs.reconcile()
    assert state(run) == (RunStatus.FAILED, WORKER_STOPPED)


# --- where reconcile runs ----------------------------------------------------------------------------


def test_a_page_polling_a_dead_run_shows_it_failed(client, owner):
    iteration = make_iteration(make_project("logos", owner=owner), "v1")
    long_ago = datetime.now(UTC) - timedelta(seconds=STALE + 300)
    make_import_run(iteration, status=RunStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago)
    client.force_login(owner)
    part = client.get(reverse("projects:iteration-import-runs", args=["logos", "v1"])).content.decode()
    assert "hx-trigger" not in part
    assert f'<p class="error">{silent_for(10)}</p>' in part


def test_pages_reconcile_at_most_once_per_fifth_of_the_interval(settings):
    settings.LOUPE_RUN_STALE_SECONDS = STALE
    iteration = make_iteration()
    long_ago = datetime.now(UTC) - timedelta(seconds=STALE * 2)
    first = make_import_run(iteration, created_at=long_ago)
    assert [item.run.pk for item in runs.reconcile_soon()] == [first.pk]
    second = make_import_run(iteration, created_at=long_ago)
    assert runs.reconcile_soon() == []
    assert state(second)[0] == RunStatus.QUEUED
    cache.delete(runs.RECONCILE_CACHE_KEY)  # what the cache does STALE / 5 seconds later
    assert [item.run.pk for item in runs.reconcile_soon()] == [second.pk]


def test_reconcile_runs_command_says_what_it_marked():
    iteration = make_iteration()
    day_ago = datetime.now(UTC) - timedelta(days=1)
    run = make_import_run(iteration, source="s3://photos/v1/", created_at=day_ago)
    out = StringIO()
    call_command("reconcile_runs", stdout=out)
    assert out.getvalue() == (
        f"failed ImportRun #{run.pk} (import of s3://photos/v1/ into {iteration.pk} (failed)): "
        f"{silent_for(24 * 60)}\n"
        "1 run(s) marked failed.\n"
    )
    out = StringIO()
    call_command("reconcile_runs", "--stale-after", "60", stdout=out)
    assert out.getvalue() == "0 run(s) marked failed.\n"


def test_reconcile_runs_command_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        call_command("reconcile_runs", "--help")
    assert exit_.value.code == 0
    assert "LOUPE_RUN_STALE_SECONDS" in capsys.readouterr().out
