"""Background image imports: S3 prefixes and staged browser uploads."""

import logging

from django_tasks import task

from projects import runs
from projects.images import importing
from projects.models import ImportRun

logger = logging.getLogger("loupe.tasks")


@task()
def import_images(*, run_id):
    run = ImportRun.objects.select_related("iteration__project").get(pk=run_id)
    run = importing.run_import(run=run)
    logger.info("import of %s into %s: %s", run.source, run.iteration, run.status)
    return {"status": run.status, "imported": run.imported, "error": run.error}


def start_import(*, iteration, source, user=None):
    """Record an ImportRun and hand it to a worker; the iteration page polls it."""
    run = ImportRun.objects.create(iteration=iteration, source=source, created_by=user)
    return runs.enqueue(run, import_images, run_id=run.pk)


def start_upload(*, iteration, files, user=None):
    """Stage uploaded files and hand their import to a worker, like an S3 import: a request of a
    thousand files only stores them. Raises ImportSourceError when they cannot be stored."""
    run = importing.stage_upload(iteration=iteration, files=files, user=user)
    return runs.enqueue(run, import_images, run_id=run.pk)
