from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from projects.models import Project
from projects.provisioning import add_member, create_iteration, create_project

DEMO_USERS = [("demo-owner", "owner"), ("demo-reviewer", "reviewer")]
DEMO_PASSWORD = "loupe-demo"


class Command(BaseCommand):
    help = "Create (or reuse) the demo project and its two demo logins. Safe to run again."

    @transaction.atomic
    def handle(self, *args, **options):
        project = Project.objects.filter(slug="logos").first()
        if project is None:
            project = create_project(
                slug="logos", name="Logos demo", labels=["aws-logo", "smile-logo"]
            )
            for name in ("v1", "v2"):
                create_iteration(project=project, name=name)
        users = get_user_model().objects
        for username, role in DEMO_USERS:
            user, created = users.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            add_member(project=project, username=username, role=role)
        self.stdout.write(self.style.SUCCESS("Demo project 'logos' is ready."))
        for username, role in DEMO_USERS:
            self.stdout.write(f"  log in as {username} / {DEMO_PASSWORD} ({role})")
