from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"

    def ready(self):
        from django.conf import settings
        from django.db.models.signals import pre_delete

        from projects.models import end_leases_of_deleted_user

        # The image_lease_set_together constraint needs a deleted user's leases ended as a pair.
        pre_delete.connect(end_leases_of_deleted_user, sender=settings.AUTH_USER_MODEL,
                           dispatch_uid="projects-end-leases-of-deleted-user")
