from django.core.management.base import BaseCommand, CommandError

from projects.models import Membership
from projects.provisioning import ProjectSetupError, add_member, find_project


class Command(BaseCommand):
    help = "Give a user a role in a project, e.g. add_member logos alice --role reviewer"

    def add_arguments(self, parser):
        parser.add_argument("project", metavar="PROJECT")
        parser.add_argument("username")
        parser.add_argument("--role", choices=Membership.Role.values, default="reviewer")

    def handle(self, *args, project, username, role, **options):
        try:
            membership = add_member(project=find_project(project), username=username, role=role)
        except ProjectSetupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            self.style.SUCCESS(f"{membership.user} is now {membership.role} of {project}.")
        )
