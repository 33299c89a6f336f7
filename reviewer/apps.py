from django.apps import AppConfig


class ReviewerConfig(AppConfig):
    name = "reviewer"

    def ready(self):
        from django.contrib.auth.signals import user_logged_out

        from reviewer.queue import on_user_logged_out

        # Whatever a reviewer was holding goes back to the queue instead of waiting out the lease.
        user_logged_out.connect(on_user_logged_out, dispatch_uid="reviewer-release-leases")
