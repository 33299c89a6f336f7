"""Settings of the processes the fault tests start and kill: the test settings, with tasks going
through the database like in production (a real `db_worker` runs them)."""

from tests.settings import *  # noqa: F403

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
