import os

from django.core.management.base import BaseCommand, CommandError

from projects.management.progress import ProgressBar
from projects.manifests.importing import import_manifest
from projects.provisioning import ProjectSetupError, find_iteration

SHOWN = 50


class Command(BaseCommand):
    help = (
        "Import a Ground Truth object-detection manifest (a hand-labeled set, a Ground Truth job's "
        "output, Rekognition's own manifests) into an iteration: human-annotated boxes become "
        "reviewed boxes, machine ones become proposals. Safe to run again. "
        "e.g. import_manifest logos/v1 v1.manifest --create-labels"
    )

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="PROJECT/ITERATION")
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--create-labels", action="store_true",
                            help="add labels the project does not have yet instead of rejecting their lines")
        parser.add_argument("--trust-machine-labels", action="store_true",
                            help='import human-annotated "no" attributes as reviewed boxes, not proposals')

    def handle(self, *args, ref, file, create_labels, trust_machine_labels, **options):
        try:
            iteration = find_iteration(ref)
        except ProjectSetupError as error:
            raise CommandError(str(error)) from None
        try:
            with open(file, encoding="utf-8-sig") as handle:
                report = import_manifest(
                    iteration=iteration, lines=_reading(handle, ProgressBar("Importing (bytes)")),
                    create_labels=create_labels, trust_machine_labels=trust_machine_labels,
                )
        except FileNotFoundError:
            raise CommandError(f"no file {file}") from None
        except UnicodeDecodeError as error:
            # Lines are read as they are imported, so the ones before the bad bytes are in.
            raise CommandError(
                f"cannot read {file}: not UTF-8 text ({error}); any lines before that point were "
                "imported, and importing the fixed file again is safe"
            ) from None
        except OSError as error:
            raise CommandError(f"cannot read {file}: {error}") from None
        self._print(report)
        if report.errors:
            raise CommandError(
                f"{len(report.errors)} line(s) of {file} were not imported (see above); "
                "fix them and run the import again"
            )
        if report.failed:
            raise CommandError(
                f"{len(report.failed)} data object(s) of {file} failed in Ground Truth (see above): "
                "label those images again"
            )

    def _print(self, report):
        for kind, items in (("warning", report.warnings), ("error", report.errors),
                            ("failed", report.failed)):
            for number, message in items[:SHOWN]:
                self.stdout.write(f"line {number}: {kind}: {message}")
            if len(items) > SHOWN:
                self.stdout.write(f"... and {len(items) - SHOWN} more {kind}s")
        if report.labels_created:
            self.stdout.write(f"created labels: {', '.join(report.labels_created)}")
        style = self.style.WARNING if report.errors or report.failed else self.style.SUCCESS
        self.stdout.write(style(report.summary() + "."))


def _reading(handle, progress):
    """The file's lines, reporting progress in bytes read: no counting pass over the file first."""
    total = os.fstat(handle.fileno()).st_size
    done = 0
    for text in handle:
        yield text
        # An estimate (a BOM or \r\n line ends make it short), so capped and completed at the end.
        done += len(text.encode("utf-8"))
        progress(min(done, total), total)
    progress(total, total)
