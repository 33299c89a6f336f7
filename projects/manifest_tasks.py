"""Old dotted path of the publish task, kept for task records queued before the move to feature
packages; remove it with projects/tasks.py (see there)."""

from projects.manifests.tasks import publish_manifest

__all__ = ["publish_manifest"]
