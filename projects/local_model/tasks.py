"""Background training of local models."""

import logging

from django_tasks import task

from projects import runs
from projects.local_model import training
from projects.models import Iteration, ModelVersion, TrainingRun

logger = logging.getLogger("loupe.tasks")


@task()
def train_local_model(*, run_id, iteration_ids, name, held_out_id=None):
    run = TrainingRun.objects.select_related("project").get(pk=run_id)
    by_id = Iteration.objects.in_bulk([*iteration_ids, *([held_out_id] if held_out_id else [])])
    # Imported here, not at the top: the web process imports this module to queue training and
    # must not load OpenCV.
    from projects.local_model.learning import run_training

    run = run_training(
        run=run, iterations=[by_id[pk] for pk in iteration_ids], name=name,
        held_out=by_id.get(held_out_id),
    )
    logger.info("training run %s: %s %s", run.pk, run.status, run.error or run.message)
    return {"status": run.status, "model_version": run.model_version_id, "error": run.error}


def start_local_training(*, project, iterations, name, held_out=None, user=None):
    """Create a TrainingRun and queue it; the page polls the run's status."""
    iterations = list(iterations)
    training.check_request(project=project, iterations=iterations, name=name, held_out=held_out)
    run = TrainingRun.objects.create(
        project=project, iteration=iterations[-1], kind=ModelVersion.Kind.LOCAL, created_by=user,
        message=f"model {name} from {', '.join(i.name for i in iterations)}"
        + (f", held out: {held_out.name}" if held_out else ""),
    )
    return runs.enqueue(
        run, train_local_model, run_id=run.pk, iteration_ids=[i.pk for i in iterations], name=name,
        held_out_id=held_out.pk if held_out else None,
    )
