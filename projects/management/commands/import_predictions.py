from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError

from projects.aws import s3
from projects.proposals.predictions import import_predictions, imported_model_version
from projects.provisioning import ProjectSetupError, find_iteration

SHOWN_LINES = 50


class Command(BaseCommand):
    help = (
        "Import predictions as proposals from JSON Lines: DetectCustomLabels output "
        '({"source-ref": ..., "CustomLabels": [...]}) or a Ground Truth manifest, e.g. '
        "import_predictions logos/v2 predictions.jsonl --model-version batch-1"
    )

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="PROJECT/ITERATION")
        parser.add_argument("file", metavar="FILE", help="a local file or s3://bucket/key")
        parser.add_argument(
            "--model-version", required=True, metavar="NAME",
            help="created as an 'imported' model version if the project has none of that name",
        )
        parser.add_argument(
            "--attribute", help="the manifest's label attribute to read when a line has several"
        )

    def handle(self, *args, ref, file, model_version, attribute, **options):
        try:
            iteration = find_iteration(ref)
            existed = iteration.project.model_versions.filter(name=model_version).exists()
            with _open_lines(file, region=iteration.project.region or None) as lines:
                version = imported_model_version(project=iteration.project, name=model_version)
                report = import_predictions(
                    iteration=iteration, model_version=version, lines=lines, attribute=attribute
                )
            if not report.images and not existed:
                # Nothing came of this file: leave no empty model version behind.
                version.delete()
        except (ProjectSetupError, s3.S3Error) as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(f"cannot read {file}: {error.strerror or error}") from None
        self._print(report, iteration, version)

    def _print(self, report, iteration, version):
        for number, problem in report.problems[:SHOWN_LINES]:
            self.stdout.write(f"line {number}: {problem}")
        if len(report.problems) > SHOWN_LINES:
            self.stdout.write(f"... and {len(report.problems) - SHOWN_LINES} more lines not imported.")
        for number, note in report.notes[:SHOWN_LINES]:
            self.stdout.write(f"line {number}: note: {note}")
        if not report.images and report.problems:
            raise CommandError(f"nothing imported: {report.summary()}")
        style = self.style.WARNING if report.problems else self.style.SUCCESS
        self.stdout.write(style(f"{iteration} ({version.name}): {report.summary()}."))
        if report.problems:
            # Like import_manifest: non-zero whenever a line was rejected, so scripts notice.
            raise CommandError(
                f"{len(report.problems)} line(s) not imported (see above): {report.summary()}; "
                "fix those lines and import them again"
            )


@contextmanager
def _open_lines(path, *, region):
    if path.startswith("s3://"):
        location = s3.parse_s3_uri(path)
        body = s3.open_object(location.bucket, location.key, region=region)
        try:
            yield body.iter_lines(keepends=True)
        finally:
            body.close()
        return
    with open(path, "rb") as handle:
        yield handle
