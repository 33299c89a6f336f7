"""Background tasks. Each is a thin wrapper that loads rows by id and calls a plain function."""

import logging

from django_tasks import task

from projects import imports, proposals
from projects.models import ImportRun, Iteration, ProposalRun

logger = logging.getLogger("loupe.tasks")


@task()
def import_images(*, run_id):
    run = ImportRun.objects.select_related("iteration__project").get(pk=run_id)
    run = imports.run_import(run=run)
    logger.info("import of %s into %s: %s", run.source, run.iteration, run.status)
    return {"status": run.status, "imported": run.imported, "error": run.error}


@task()
def run_proposal_run(*, run_id):
    run = ProposalRun.objects.select_related("iteration__project", "model_version").get(pk=run_id)
    run = proposals.run_proposals(run=run)
    logger.info("proposal run %s: %s, %s done, %s failed", run.pk, run.status, run.done, run.failed)
    return {"status": run.status, "done": run.done, "failed": run.failed, "error": run.error}


@task()
def train_local_model(*, run_id, iteration_ids, name, held_out_id=None):
    # Imported here so processes that never train do not load the detector's numeric stack.
    from projects import training
    from projects.models import TrainingRun

    run = TrainingRun.objects.select_related("project").get(pk=run_id)
    by_id = Iteration.objects.in_bulk([*iteration_ids, *([held_out_id] if held_out_id else [])])
    run = training.run_training(
        run=run, iterations=[by_id[pk] for pk in iteration_ids], name=name,
        held_out=by_id.get(held_out_id),
    )
    logger.info("training run %s: %s %s", run.pk, run.status, run.error or run.message)
    return {"status": run.status, "model_version": run.model_version_id, "error": run.error}
