from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.db.models import Max, Min
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from projects.runs import RUN_MODELS, stale_seconds


class Command(BaseCommand):
    help = (
        "Exit non-zero when the task worker is not doing its job: the database is unreachable, or a "
        "task has waited for a worker longer than --max-wait while no worker showed a sign of life "
        "(claimed or finished a task, or a run's heartbeat) in that time. A worker busy with one long "
        "run keeps beating, so tasks queued behind it do not make it unhealthy. The worker "
        "container's health check (docker/Dockerfile)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-wait", type=int, default=None, metavar="SECONDS",
            help=f"how long a task may wait for a worker (default: LOUPE_RUN_STALE_SECONDS, "
                 f"{stale_seconds()})",
        )

    def handle(self, *args, max_wait, **options):
        now = timezone.now()
        limit = timedelta(seconds=stale_seconds() if max_wait is None else max_wait)
        try:
            oldest = DBTaskResult.objects.ready().aggregate(oldest=Min("enqueued_at"))["oldest"]
            overdue = oldest is not None and now - oldest > limit
            last_sign = _last_sign_of_life() if overdue else None
        except DatabaseError as error:
            raise CommandError(f"unhealthy: the database is unreachable ({error}); check DATABASE_URL "
                               "and that the database server is up") from None
        if overdue and (last_sign is None or now - last_sign > limit):
            waited = int((now - oldest).total_seconds())
            raise CommandError(
                f"unhealthy: a task has waited {waited} s for a worker and no worker has shown a sign "
                f"of life for over {int(limit.total_seconds())} s; restart the worker (`manage.py db_worker`)"
            )
        self.stdout.write("healthy")


def _last_sign_of_life():
    """The latest moment a worker claimed or finished a task, or a run it executes beat."""
    signs = [
        *DBTaskResult.objects.exclude(status=TaskResultStatus.READY)
        .aggregate(started=Max("started_at"), finished=Max("finished_at")).values(),
        *(model.objects.aggregate(beat=Max("heartbeat_at"))["beat"] for model in RUN_MODELS),
    ]
    signs = [sign for sign in signs if sign is not None]
    return max(signs) if signs else None
