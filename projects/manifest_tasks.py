"""Background task publishing a manifest to S3: exports of any size run off the request."""

import logging

from django_tasks import task

from projects.manifest import ManifestError
from projects.manifest_publish import publish_to_s3
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
