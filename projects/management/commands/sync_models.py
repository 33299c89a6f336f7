from django.core.management.base import BaseCommand, CommandError

from projects.aws.s3 import S3Error
from projects.proposals.rekognition import RekognitionError, sync_model_versions
from projects.provisioning import ProjectSetupError, find_project


class Command(BaseCommand):
    help = (
        "Read the project's Rekognition Custom Labels versions into Loupe (status, F1, per-label "
        "thresholds from the evaluation summary), e.g. sync_models logos"
    )

    def add_arguments(self, parser):
        parser.add_argument("project", metavar="PROJECT")

    def handle(self, *args, project, **options):
        try:
            report = sync_model_versions(project=find_project(project))
        except (ProjectSetupError, RekognitionError, S3Error) as error:
            raise CommandError(str(error)) from None
        for name, problem in report.problems:
            self.stdout.write(self.style.WARNING(f"{name}: {problem}"))
        style = self.style.WARNING if report.problems else self.style.SUCCESS
        self.stdout.write(style(f"{project}: {report.summary()}."))
