"""Old dotted paths of background tasks, kept for task records queued before the move to feature
packages (django-tasks stores a task's module path with each queued row).

Remove this module once no queued or running task record names `projects.tasks.*`
(`SELECT DISTINCT task_path FROM django_tasks_database_dbtaskresult WHERE status IN
('READY', 'RUNNING')`), one release after the move.
"""

from projects.images.tasks import import_images
from projects.local_model.tasks import train_local_model
from projects.proposals.tasks import run_proposal_run

__all__ = ["import_images", "run_proposal_run", "train_local_model"]
