"""Background training: a Rekognition run polled until it ends; local training delegated."""

import logging
import time
from datetime import timedelta

from django.utils import timezone
from django_tasks import task

from projects import runs
from projects.local_model.tasks import start_local_training
from projects.models import TrainingRun
from projects.training import service

logger = logging.getLogger("loupe.tasks")

sleep = time.sleep


@task()
def poll_rekognition_training(*, run_id):
    """One poll of a Rekognition training; while Rekognition is busy it queues the next poll for
    POLL_SECONDS later, so no worker is held for the hours training takes. A backend that cannot
    defer tasks (the immediate one) follows the run to its end in place."""
    run = TrainingRun.objects.select_related("project", "iteration", "model_version").get(pk=run_id)
    service.begin(run)
    if not poll_rekognition_training.get_backend().supports_defer:
        service.follow(run, sleep=sleep)
    else:
        while True:
            before = run.details.get("phase")
            if service.advance(run):
                break
            if run.details.get("phase") == before:
                later = timezone.now() + timedelta(seconds=service.POLL_SECONDS)
                runs.enqueue(run, poll_rekognition_training.using(run_after=later), run_id=run.pk)
                break
    logger.info("training run %s: %s %s %s", run.pk, run.status, run.details.get("phase"), run.error)
    return {"status": run.status, "phase": run.details.get("phase"), "error": run.error}


def start_training(request, *, user=None):
    """Queue the training the request asks for; returns the TrainingRun the page follows."""
    if request.backend == service.LOCAL:
        service.check_request(request)
        return start_local_training(
            project=request.project, iterations=service.training_iterations(request),
            name=request.version_name, held_out=request.test_from, user=user,
        )
    run = service.create_rekognition_run(request, user=user)
    return runs.enqueue(run, poll_rekognition_training, run_id=run.pk)
