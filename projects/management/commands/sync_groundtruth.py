from django.core.management.base import BaseCommand, CommandError

from projects.groundtruth.results import GroundTruthError, jobs_to_follow, sync
from projects.provisioning import ProjectSetupError, find_iteration

SHOWN = 50


class Command(BaseCommand):
    help = (
        "Ask Ground Truth about an iteration's labeling jobs (DescribeLabelingJob): record status and "
        "progress, import the output of completed or stopped jobs as reviewed boxes, report failed "
        "data objects and release the images. Safe to run again. e.g. sync_groundtruth logos/v2"
    )

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="PROJECT/ITERATION")

    def handle(self, *args, ref, **options):
        try:
            iteration = find_iteration(ref)
        except ProjectSetupError as error:
            raise CommandError(str(error)) from None
        jobs = list(jobs_to_follow(iteration))
        if not jobs:
            self.stdout.write(f"no Ground Truth job of {iteration} to follow")
        failed = 0
        for job in jobs:
            try:
                sync(job)
            except GroundTruthError as error:
                failed += 1
                self.stdout.write(self.style.ERROR(str(error)))
                continue
            counters = job.counters or {}
            self.stdout.write(
                f"{job.name}: {job.status}, {counters.get('TotalLabeled', 0)} labeled, "
                f"{counters.get('Unlabeled', 0)} unlabeled, "
                f"{counters.get('FailedNonRetryableError', 0)} failed"
            )
            if job.failure_reason:
                self.stdout.write(self.style.ERROR(f"  failure reason: {job.failure_reason}"))
            report = job.report or {}
            if job.imported_at and "lines" in report:
                self.stdout.write(f"  imported {report['imported']} images ({report['unchanged']} unchanged) "
                                  f"from {report['lines']} lines")
            for source, reason in report.get("failed", [])[:SHOWN]:
                self.stdout.write(self.style.WARNING(f"  failed data object {source}: {reason}"))
            for number, message in report.get("errors", [])[:SHOWN]:
                self.stdout.write(self.style.WARNING(f"  line {number}: {message}"))
        if failed:
            raise CommandError(f"{failed} job(s) could not be followed (see above)")
