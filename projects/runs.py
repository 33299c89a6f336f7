"""The one lifecycle of a BackgroundRun (imports, proposal runs, exports, training).

A run is created QUEUED by its feature's service, handed to a task with `enqueue`, marked RUNNING
by `begin`, kept alive by `heartbeat` and finished by `finish`; `failing` turns any exception in
the task into FAILED with its message. `reconcile` fails the runs whose worker died, so no page
polls a dead "running" run for longer than LOUPE_RUN_STALE_SECONDS. Services call these; they
never import tasks: the task is passed in.
"""

import logging
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from projects.models import ACTIVE_RUN_STATUSES, Export, ImportRun, ProposalRun, RunStatus, TrainingRun

logger = logging.getLogger("loupe.runs")

RUN_MODELS = (ProposalRun, ImportRun, TrainingRun, Export)
# A heartbeat is one UPDATE; loops call it per batch or per image, so it writes at most this often.
HEARTBEAT_EVERY = timedelta(seconds=10)
RECONCILE_CACHE_KEY = "loupe:runs:reconciled"


def enqueue(run, task, **arguments):
    """Queue `task` for `run` and record its task id, without overwriting what the task wrote.

    The immediate backend (tests, `manage.py` in the foreground) runs the task inside enqueue(),
    so only task_id is written and the run is read back afterwards.
    """
    result = task.enqueue(**arguments)
    type(run).objects.filter(pk=run.pk).update(task_id=str(result.id)[:64])
    run.refresh_from_db()
    return run


def begin(run, **fields):
    """Mark the run RUNNING (with any other `fields` the feature sets as it starts).

    started_at is kept when already set: a resumed run started when it first did.
    """
    now = timezone.now()
    fields = {"status": RunStatus.RUNNING, "started_at": run.started_at or now, "heartbeat_at": now,
              **fields}
    return _save(run, fields)


def heartbeat(run, *, now=None, **fields):
    """Tell reconcile the run's worker is alive; cheap enough to call on every batch.

    fields (counts so far) are written with it: if the worker is killed, the failed run still
    says how far it got.
    """
    now = now or timezone.now()
    if run.heartbeat_at is not None and now - run.heartbeat_at < HEARTBEAT_EVERY:
        return
    run.heartbeat_at = now
    for name, value in fields.items():
        setattr(run, name, value)
    type(run).objects.filter(pk=run.pk).update(heartbeat_at=now, **fields)


def finish(run, status, *, error="", **fields):
    """Record how the run ended, with any result `fields` (counts, report, ...) in the same write."""
    fields = {"status": status, "error": error, "finished_at": timezone.now(), **fields}
    return _save(run, fields)


def _save(run, fields):
    for name, value in fields.items():
        setattr(run, name, value)
    run.save(update_fields=list(fields))
    return run


def describe(error, plain=()):
    """A failure's message: Loupe's own errors (`plain`) already say what to do; anything else is
    named by its type, so an unexpected KeyError is not shown as a bare key."""
    if isinstance(error, plain):
        return str(error)
    return f"{type(error).__name__}: {error}"


@contextmanager
def failing(run, *, plain=(), fields=None):
    """Any exception inside the block marks the run FAILED with its message, then propagates.

    plain: the exception classes whose message is shown as is (see describe). fields(error) adds
    fields to the failed run (an export's validation report). A kill (KeyboardInterrupt,
    SystemExit) is not an Exception: the run stays as it is and reconcile fails it later.
    """
    try:
        yield run
    except Exception as error:
        finish(run, RunStatus.FAILED, error=describe(error, plain), **(fields(error) if fields else {}))
        raise


# --- runs whose worker died -------------------------------------------------------------------------


@dataclass(frozen=True)
class Reconciled:
    run: object
    reason: str

    def __str__(self):
        return f"{type(self.run).__name__} #{self.run.pk} ({self.run}): {self.reason}"


def stale_seconds():
    return settings.LOUPE_RUN_STALE_SECONDS


def reconcile(*, now=None, stale_after=None):
    """Fail every QUEUED or RUNNING run whose worker has died; returns what it marked.

    A run is dead when its task record has finished (FAILED or SUCCESSFUL: the task ended without
    finishing the run), or when its last sign of life (heartbeat, start, creation) is older than
    stale_after and its task record is not READY. A READY record is a task still waiting for a
    worker: it runs once one starts, so its run is left alone. A run with no record (the immediate
    backend, a deleted record, a task not queued yet) is only failed once it is stale.
    """
    now = now or timezone.now()
    stale_after = timedelta(seconds=stale_seconds() if stale_after is None else stale_after)
    marked = []
    for model in RUN_MODELS:
        active = list(
            model.objects.filter(status__in=ACTIVE_RUN_STATUSES)
            .annotate(last_seen=Coalesce("heartbeat_at", "started_at", "created_at"))
        )
        tasks = _task_records(run.task_id for run in active)
        for run in active:
            task_status, task_started = tasks.get(run.task_id, (None, None))
            # A worker that has just claimed a long-queued task has not begun its run yet.
            last_seen = max(run.last_seen, task_started or run.last_seen)
            reason = _death(task_status, now - last_seen, stale_after)
            if reason and _fail_if_active(run, reason, now):
                marked.append(Reconciled(run, reason))
    for item in marked:
        logger.warning("reconciled %s", item)
    return marked


def _task_records(task_ids):
    """{task_id: (status, started_at)} of the runs' database task records; ids that are not a
    record's are left out (the immediate backend's ids are not even UUIDs)."""
    ids = {}
    for task_id in task_ids:
        try:
            ids[uuid.UUID(task_id)] = task_id
        except ValueError:
            continue
    records = DBTaskResult.objects.filter(id__in=list(ids)).values_list("id", "status", "started_at")
    return {ids[uuid.UUID(str(pk))]: (status, started) for pk, status, started in records}


def _death(task_status, silent_for, stale_after):
    if task_status in (TaskResultStatus.FAILED, TaskResultStatus.SUCCESSFUL):
        state = "failed" if task_status == TaskResultStatus.FAILED else "ended"
        return (
            f"the background worker stopped this run (its task {state} without finishing it): "
            "make sure `manage.py db_worker` is running, then start the run again"
        )
    if task_status == TaskResultStatus.READY or silent_for < stale_after:
        return ""
    seconds = silent_for.total_seconds()
    silence = f"{int(seconds)} s" if seconds < 120 else f"{round(seconds / 60)} min"
    return (
        f"the background worker stopped: no sign of life from this run for {silence}; "
        "start the worker again (`manage.py db_worker`), then start the run again"
    )


def _fail_if_active(run, reason, now):
    # Only if still active: the run may have finished between the read and this write.
    updated = type(run).objects.filter(pk=run.pk, status__in=ACTIVE_RUN_STATUSES).update(
        status=RunStatus.FAILED, error=reason, finished_at=now
    )
    if updated:
        run.status, run.error, run.finished_at = RunStatus.FAILED, reason, now
        if isinstance(run, ImportRun):
            # A dead upload import never gets to delete what it staged.
            run.discard_staged_files()
    return bool(updated)


def reconcile_soon():
    """reconcile() at most a few times per stale interval, for the pages that poll runs.

    With the interval split in five, a dead run is failed at most a fifth of the interval after
    it became stale; the cache keeps the rest of the polls to one cache read.
    """
    every = max(1, stale_seconds() // 5)
    if cache.add(RECONCILE_CACHE_KEY, True, timeout=every):
        return reconcile()
    return []
