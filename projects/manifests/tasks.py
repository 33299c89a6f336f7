"""Background task publishing a manifest to S3: exports of any size run off the request."""

import logging

from django_tasks import task

from projects import runs
from projects.manifests.export import ManifestError
from projects.manifests.publish import publish_to_s3, queue_publish
from projects.models import Export

logger = logging.getLogger("loupe.tasks")


@task()
def publish_manifest(*, export_id):
    export = Export.objects.select_related("iteration__project", "created_by").get(pk=export_id)
    options = export.options
    try:
        publish_to_s3(
            iteration=export.iteration, include_unreviewed=options.get("include_unreviewed", False),
            include_empty=options.get("include_empty", True), test_fraction=options.get("test_fraction"),
            export=export,
        )
    except ManifestError as error:
        # publish_to_s3 has recorded the failure on the Export for the page to show.
        logger.info("publish of %s refused: %s", export.iteration, error)
    export.refresh_from_db()
    return {"status": export.status, "uri": export.uri}


def start_publish(*, iteration, include_unreviewed=False, include_empty=True, test_fraction=None, user=None):
    """Record a queued Export and hand it to a worker; the export page polls it."""
    export = queue_publish(
        iteration=iteration, include_unreviewed=include_unreviewed, include_empty=include_empty,
        test_fraction=test_fraction, user=user,
    )
    return runs.enqueue(export, publish_manifest, export_id=export.pk)
