"""The queries behind the iteration page's manifest section."""

from django.db.models import Count, Max

from projects.models import Export

SHOWN_EXPORTS = 5


def manifest_context(iteration):
    """Publishes as rows (each has a status page worth opening); downloads as one line of counts.

    A download is finished when the browser has the file, so a row and a status page per download
    only pushed the publishes out of the table; they stay recorded for the admin's audit.
    """
    exports = iteration.exports.all()
    downloads = exports.filter(kind=Export.Kind.DOWNLOAD).aggregate(count=Count("id"), last=Max("created_at"))
    return {
        "manifest_exports": list(exports.exclude(kind=Export.Kind.DOWNLOAD)[:SHOWN_EXPORTS]),
        "manifest_downloads": downloads,
    }
