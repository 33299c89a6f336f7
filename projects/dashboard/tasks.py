"""Background passes over large iterations' review work, so the dashboard never waits for one."""

import logging

from django_tasks import task

from projects.dashboard import metrics
from projects.models import Iteration, ModelVersion

logger = logging.getLogger("loupe.tasks")


@task()
def refresh_metrics(*, iteration_id, model_version_id):
    iteration = Iteration.objects.select_related("project").filter(pk=iteration_id).first()
    model_version = ModelVersion.objects.filter(pk=model_version_id).first()
    if iteration is None or model_version is None:
        return {"refreshed": False}
    data = metrics.refresh(iteration, model_version)
    logger.info("metrics of %s on %s refreshed: %s reviewed images", model_version, iteration,
                data.get("reviewed"))
    return {"refreshed": True, "reviewed": data.get("reviewed")}


def schedule_refresh(iteration, model_version):
    refresh_metrics.enqueue(iteration_id=iteration.pk, model_version_id=model_version.pk)
