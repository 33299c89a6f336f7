"""Background proposal runs."""

import logging

from django_tasks import task

from projects import runs as background
from projects.models import ProposalRun
from projects.proposals import runs

logger = logging.getLogger("loupe.tasks")


@task()
def run_proposal_run(*, run_id):
    run = ProposalRun.objects.select_related("iteration__project", "model_version").get(pk=run_id)
    run = runs.run_proposals(run=run)
    logger.info("proposal run %s: %s, %s done, %s failed", run.pk, run.status, run.done, run.failed)
    return {"status": run.status, "done": run.done, "failed": run.failed, "error": run.error}


def start_proposal_run(*, iteration, model_version, concurrency, user=None):
    """Create a run and hand it to a background worker; the run goes on if the browser closes."""
    run = runs.create_proposal_run(
        iteration=iteration, model_version=model_version, concurrency=concurrency, user=user
    )
    run = background.enqueue(run, run_proposal_run, run_id=run.pk)
    # The task may already have switched the iteration to this model (see runs._show_model).
    iteration.refresh_from_db(fields=["shown_model"])
    return run
