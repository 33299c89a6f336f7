"""Background tasks. Each is a thin wrapper that loads rows by id and calls a plain function."""

import logging

from django_tasks import task

from projects import imports
from projects.models import Iteration

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
