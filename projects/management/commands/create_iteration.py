from django.core.management.base import BaseCommand, CommandError

from projects.provisioning import ProjectSetupError, create_iteration, find_project


class Command(BaseCommand):
    help = "Create an iteration, e.g. create_iteration logos/v2"

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="PROJECT/ITERATION")

    def handle(self, *args, ref, **options):
        slug, sep, name = ref.partition("/")
        try:
            if not sep or not name:
                raise ProjectSetupError(f"{ref!r} is not PROJECT/ITERATION (e.g. logos/v2)")
            iteration = create_iteration(project=find_project(slug), name=name)
        except ProjectSetupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"Created iteration {iteration}."))
