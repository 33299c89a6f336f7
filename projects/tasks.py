"""Background tasks. Each is a thin wrapper that loads rows by id and calls a plain function."""

import logging

from django_tasks import task

from projects import imports, proposals
from projects.models import Iteration, ProposalRun

logger = logging.getLogger("loupe.tasks")


@task()
def import_images(*, iteration_id, source):
    iteration = Iteration.objects.select_related("project").get(pk=iteration_id)
    report = imports.import_source(iteration=iteration, source=source)
    logger.info("import of %s into %s: %s", source, iteration, report.summary())
    return {
        "imported": report.imported,
        "duplicates": report.duplicates,
        "rejected": [list(item) for item in report.rejected[:1000]],
    }


@task()
def run_proposal_run(*, run_id):
    run = ProposalRun.objects.select_related("iteration__project", "model_version").get(pk=run_id)
    run = proposals.run_proposals(run=run)
    logger.info("proposal run %s: %s, %s done, %s failed", run.pk, run.status, run.done, run.failed)
    return {"status": run.status, "done": run.done, "failed": run.failed, "error": run.error}
