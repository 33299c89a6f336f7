from django.core.management.base import BaseCommand, CommandError

from projects.manifests.checks import TEST, TRAIN, check_split, validate_lines

# Tolerates the byte-order mark some Windows editors put at the start of a UTF-8 file.
ENCODING = "utf-8-sig"


class Command(BaseCommand):
    help = (
        "Check a Ground Truth object-detection manifest against Rekognition Custom Labels' rules and "
        "print the report; exits non-zero when Rekognition would refuse it. "
        "e.g. check_manifest train.manifest [--test test.manifest] [--region ap-south-1]"
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--test", metavar="TEST_FILE",
                            help="the matching test manifest: also check the train/test split rules")
        parser.add_argument("--region", default="",
                            help="the Rekognition project's region, for its regional quotas "
                                 "(ap-south-1 and eu-west-2 take fewer images)")

    def handle(self, *args, file, test, region, **options):
        errors = 0
        codes = []
        for path, purpose in [(file, TRAIN)] + ([(test, TEST)] if test else []):
            report = self._check(path, region, purpose)
            if test:
                self.stdout.write(f"== {path}")
            self.stdout.write(report.as_text())
            errors += len(report.errors)
            codes += [issue.code for issue in report.errors if issue.code not in codes]
        if test:
            with open(file, encoding=ENCODING) as train_lines, open(test, encoding=ENCODING) as test_lines:
                try:
                    problems = check_split(train_lines, test_lines)
                except ValueError as error:
                    problems = [f"cannot compare the two files: {error}"]
            for problem in problems:
                self.stdout.write(f"ERROR [split] {problem}")
            errors += len(problems)
            codes += ["split"] if problems else []
        if errors:
            raise CommandError(
                f"{errors} error(s) ({', '.join(codes)}): Rekognition would refuse this manifest")

    def _check(self, path, region, purpose):
        try:
            with open(path, encoding=ENCODING) as lines:
                return validate_lines(lines, region=region, purpose=purpose)
        except FileNotFoundError:
            raise CommandError(f"no file {path}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read {path}: {error}") from None
