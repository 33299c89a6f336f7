"""Background follow-up of Ground Truth jobs: one poll per job, re-queued until the job has ended."""

import logging
from datetime import timedelta

from django.utils import timezone
from django_tasks import task

from projects.groundtruth import results
from projects.models import GroundTruthJob

logger = logging.getLogger("loupe.tasks")


@task()
def poll_groundtruth_job(*, job_id):
    """DescribeLabelingJob once, import the output when there is one; while the job runs, queue the
    next poll POLL_SECONDS later (a backend that cannot defer polls once: sync_groundtruth or the
    page's refresh carries on)."""
    job = GroundTruthJob.objects.select_related("iteration__project", "service_user").get(pk=job_id)
    try:
        results.sync(job)
    except results.GroundTruthError as error:
        logger.warning("Ground Truth job %s: %s", job.name, error)
    # A completed job whose output could not be read yet is polled again too.
    unfinished = not job.ended or (job.status == GroundTruthJob.Status.COMPLETED and job.imported_at is None)
    if unfinished and poll_groundtruth_job.get_backend().supports_defer:
        later = timezone.now() + timedelta(seconds=results.POLL_SECONDS)
        poll_groundtruth_job.using(run_after=later).enqueue(job_id=job.pk)
    logger.info("Ground Truth job %s: %s", job.name, job.status)
    return {"status": job.status}


def follow(jobs):
    """Queue the polling of freshly dispatched jobs."""
    for job in jobs:
        if job.arn:
            poll_groundtruth_job.enqueue(job_id=job.pk)
