from django.core.management.base import BaseCommand, CommandError

from projects.proposals.rekognition import RekognitionError, start_model
from projects.provisioning import ProjectSetupError, find_model_version, find_project


class ModelServingCommand(BaseCommand):
    """Start or stop serving a Rekognition model version: `action` does it."""

    action = None

    def add_arguments(self, parser):
        parser.add_argument("project", metavar="PROJECT")
        parser.add_argument("--model-version", required=True, metavar="NAME")

    def handle(self, *args, project, model_version, **options):
        self.serve(project, model_version)

    def serve(self, project, model_version):
        # Not in handle(): Django prints whatever handle() returns.
        try:
            version = find_model_version(project=find_project(project), name=model_version)
            self.action(model_version=version)
        except (ProjectSetupError, RekognitionError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"{version.name}: {version.status}."))
        return version


class Command(ModelServingCommand):
    help = (
        "Start a Rekognition Custom Labels model version (1 inference unit) so it can propose. "
        "It is billed by the hour while running: stop it with stop_model when done."
    )
    action = staticmethod(start_model)

    def handle(self, *args, project, model_version, **options):
        version = self.serve(project, model_version)
        self.stdout.write(self.style.WARNING(
            f"A running model is billed by the hour: stop it with "
            f"'manage.py stop_model {project} --model-version {version.name}' when the runs are done."
        ))
