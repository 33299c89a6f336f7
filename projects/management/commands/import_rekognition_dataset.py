from django.core.management.base import BaseCommand, CommandError

from projects.provisioning import ProjectSetupError, find_iteration
from projects.training.dataset_import import RekognitionError, import_rekognition_dataset

SHOWN = 50


class Command(BaseCommand):
    help = (
        "Import an existing Rekognition Custom Labels dataset (all pages of ListDatasetEntries) into "
        "an iteration: its human-annotated boxes become reviewed truth. Safe to run again. e.g. "
        "import_rekognition_dataset logos/v1 --dataset-arn "
        "arn:aws:rekognition:us-east-1:123456789012:project/logos/dataset/train/1700000000100"
    )

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="PROJECT/ITERATION")
        parser.add_argument("--dataset-arn", required=True, metavar="ARN")
        parser.add_argument("--create-labels", action="store_true",
                            help="add labels the project does not have yet instead of rejecting their lines")

    def handle(self, *args, ref, dataset_arn, create_labels, **options):
        try:
            iteration = find_iteration(ref)
            report = import_rekognition_dataset(
                iteration=iteration, dataset_arn=dataset_arn, create_labels=create_labels
            )
        except ProjectSetupError as error:
            raise CommandError(str(error)) from None
        except RekognitionError as error:
            raise CommandError(
                f"{error} (entries read before this were imported; importing again is safe)"
            ) from None
        for kind, items in (("warning", report.warnings), ("error", report.errors)):
            for number, message in items[:SHOWN]:
                self.stdout.write(f"entry {number}: {kind}: {message}")
            if len(items) > SHOWN:
                self.stdout.write(f"... and {len(items) - SHOWN} more {kind}s")
        if report.labels_created:
            self.stdout.write(f"created labels: {', '.join(report.labels_created)}")
        style = self.style.WARNING if report.errors else self.style.SUCCESS
        self.stdout.write(style(report.summary().replace("lines", "entries", 1) + "."))
        if report.errors:
            raise CommandError(f"{len(report.errors)} entries were not imported (see above)")
