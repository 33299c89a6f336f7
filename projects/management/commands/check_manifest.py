from django.core.management.base import BaseCommand, CommandError

from projects.manifests.checks import check_split, validate_lines

# Tolerates the byte-order mark some Windows editors put at the start of a UTF-8 file.
ENCODING = "utf-8-sig"


class Command(BaseCommand):
    help = (
        "Check a Ground Truth object-detection manifest against Rekognition Custom Labels' rules and "
        "print the report; exits non-zero when Rekognition would refuse it. "
        "e.g. check_manifest train.manifest [--test test.manifest]"
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--test", metavar="TEST_FILE",
                            help="the matching test manifest: also check the train/test split rules")

    def handle(self, *args, file, test, **options):
        errors = 0
        for path in [file] + ([test] if test else []):
            report = self._check(path)
            if test:
                self.stdout.write(f"== {path}")
            self.stdout.write(report.as_text())
            errors += len(report.errors)
        if test:
            with open(file, encoding=ENCODING) as train_lines, open(test, encoding=ENCODING) as test_lines:
                try:
                    problems = check_split(train_lines, test_lines)
                except ValueError as error:
                    problems = [f"cannot compare the two files: {error}"]
            for problem in problems:
                self.stdout.write(f"ERROR [split] {problem}")
            errors += len(problems)
        if errors:
            raise CommandError(f"{errors} error(s): Rekognition would refuse this manifest")

    def _check(self, path):
        try:
            with open(path, encoding=ENCODING) as lines:
                return validate_lines(lines)
        except FileNotFoundError:
            raise CommandError(f"no file {path}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read {path}: {error}") from None
