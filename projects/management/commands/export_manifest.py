from argparse import ArgumentTypeError

from django.core.management.base import BaseCommand, CommandError

from projects.management.progress import ProgressBar
from projects.manifests.export import ManifestError
from projects.manifests.publish import ManifestRefused, export_to_file, publish_to_s3
from projects.provisioning import ProjectSetupError, find_iteration


def fraction(value):
    try:
        number = float(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not a number; use e.g. 0.2") from None
    if not 0 < number < 1:
        raise ArgumentTypeError(f"{value} must be between 0 and 1, e.g. 0.2")
    return number


class Command(BaseCommand):
    help = (
        "Export an iteration's reviewed boxes as the Ground Truth manifest Rekognition Custom Labels "
        "trains on, checked against Rekognition's rules first, e.g. "
        "export_manifest logos/v2 --output logos-v2.manifest [--s3] [--test-fraction 0.2]"
    )

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="PROJECT/ITERATION")
        parser.add_argument("--output", metavar="FILE",
                            help="write the manifest here (with a split: FILE-train and FILE-test)")
        parser.add_argument("--s3", action="store_true",
                            help="publish to the project's output location in S3")
        parser.add_argument("--include-unreviewed", action="store_true",
                            help="also export the model's proposals above each label's threshold "
                                 "for images not reviewed yet (marked human-annotated: no; "
                                 "Rekognition ignores confidence and trains on them like reviewed boxes)")
        parser.add_argument("--no-empty", action="store_true",
                            help="leave out images verified as having no objects")
        parser.add_argument("--test-fraction", type=fraction, metavar="F",
                            help="also split into training and test manifests, F of the images in test")

    def handle(self, *args, ref, output, s3, include_unreviewed, no_empty, test_fraction, **options):
        if not output and not s3:
            raise CommandError("say where the manifest goes: --output FILE, --s3, or both")
        try:
            iteration = find_iteration(ref)
        except ProjectSetupError as error:
            raise CommandError(str(error)) from None
        arguments = {
            "iteration": iteration, "include_unreviewed": include_unreviewed,
            "include_empty": not no_empty, "test_fraction": test_fraction,
        }
        exports = []
        try:
            if output:
                exports.append(export_to_file(path=output, progress=ProgressBar("Exporting"), **arguments))
            if s3:
                exports.append(publish_to_s3(progress=ProgressBar("Publishing"), **arguments))
        except ManifestRefused as error:
            if error.report is not None:
                self.stdout.write(error.report.as_text())
            raise CommandError(str(error)) from None
        except ManifestError as error:
            raise CommandError(str(error)) from None
        self._print(exports)

    def _print(self, exports):
        for export in exports:
            split = export.report.get("split")
            if split:
                self.stdout.write(
                    f"Split: {split['train']} training and {split['test']} test images, "
                    f"{split['moved']} moved so that labels appear in both."
                )
                for note in split["notes"]:
                    self.stdout.write(f"  note: {note}")
            for file in export.report["files"]:
                self.stdout.write(
                    self.style.SUCCESS(f"Wrote {file['lines']} lines to {file['uri']} ({file['role']}).")
                )
                warnings = file["validation"]["warnings"]
                for issue in warnings:
                    self.stdout.write(
                        f"  warning [{issue['code']}] {issue['message']}: {issue['items']} "
                        f"in {issue['images']} image(s)"
                    )
