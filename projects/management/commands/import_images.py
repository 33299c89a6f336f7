from django.core.management.base import BaseCommand, CommandError

from projects.aws.s3 import S3Error
from projects.images.importing import ImportSourceError, import_source
from projects.management.progress import ProgressBar
from projects.provisioning import ProjectSetupError, find_iteration


class Command(BaseCommand):
    help = (
        "Import images into an iteration from a local folder (copied into Loupe's storage) or "
        "an S3 prefix (registered in place), e.g. import_images logos/v2 s3://bucket/v2/"
    )

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="PROJECT/ITERATION")
        parser.add_argument("source", metavar="SOURCE", help="a folder or s3://bucket/prefix/")

    def handle(self, *args, ref, source, **options):
        try:
            iteration = find_iteration(ref)
            report = import_source(
                iteration=iteration, source=source, progress=ProgressBar("Importing")
            )
        except (ProjectSetupError, ImportSourceError, S3Error) as error:
            raise CommandError(str(error)) from None
        for name, reason in report.rejected:
            self.stdout.write(f"rejected {name}: {reason}")
        style = self.style.WARNING if report.rejected else self.style.SUCCESS
        self.stdout.write(style(f"{iteration}: {report.summary()}."))
