from django.core.management.base import BaseCommand, CommandError

from projects.proposals import find_model_version
from projects.provisioning import ProjectSetupError, find_project
from projects.rekognition import RekognitionError, stop_model


class Command(BaseCommand):
    help = "Stop a running Rekognition Custom Labels model version so it stops being billed."

    def add_arguments(self, parser):
        parser.add_argument("project", metavar="PROJECT")
        parser.add_argument("--model-version", required=True, metavar="NAME")

    def handle(self, *args, project, model_version, **options):
        try:
            version = find_model_version(project=find_project(project), name=model_version)
            stop_model(model_version=version)
        except (ProjectSetupError, RekognitionError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"{version.name}: {version.status}."))
