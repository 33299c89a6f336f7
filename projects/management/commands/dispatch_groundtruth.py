import json

from django.core.management.base import BaseCommand, CommandError

from projects.groundtruth import contract
from projects.groundtruth.dispatch import DispatchError, DispatchRequest, cors_instructions, dispatch
from projects.groundtruth.tasks import follow
from projects.provisioning import ProjectSetupError, find_iteration

SHOWN_LINES = 3


class Command(BaseCommand):
    help = (
        "Send an iteration's images awaiting review, with their proposals, to a SageMaker Ground Truth "
        "private workforce as bounding-box adjustment jobs (one per group of labels); the images are "
        "leased to the job until its results are imported (sync_groundtruth). e.g. dispatch_groundtruth "
        "logos/v2 --workteam-arn arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team "
        "--role-arn arn:aws:iam::123456789012:role/GroundTruth"
    )

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="PROJECT/ITERATION")
        parser.add_argument("--workteam-arn", required=True, metavar="ARN")
        parser.add_argument("--role-arn", required=True, metavar="ARN",
                            help="IAM role Ground Truth assumes to read the images and write results")
        parser.add_argument("--max-labels-per-job", type=int, default=contract.MAX_LABELS_PER_JOB,
                            help=f"labels per job, 1..{contract.MAX_LABELS_PER_JOB} "
                                 "(crowd-bounding-box's limit)")
        parser.add_argument("--dry-run", action="store_true",
                            help="write nothing to AWS: print the files and the CreateLabelingJob requests")

    def handle(self, *args, ref, workteam_arn, role_arn, max_labels_per_job, dry_run, **options):
        try:
            iteration = find_iteration(ref)
            plan = dispatch(DispatchRequest(iteration=iteration, workteam_arn=workteam_arn, role_arn=role_arn,
                                            max_labels_per_job=max_labels_per_job, dry_run=dry_run))
        except (ProjectSetupError, DispatchError) as error:
            raise CommandError(str(error)) from None
        if dry_run:
            self._print_plan(plan)
            return
        for row in plan.created:
            if row.arn:
                labels = ", ".join(row.labels)
                self.stdout.write(self.style.SUCCESS(f"created {row.name} ({labels}): {row.arn}"))
            else:
                self.stdout.write(self.style.ERROR(f"{row.name}: {row.failure_reason}"))
        self.stdout.write(f"{plan.images} images leased to the job(s) until their results are imported.")
        follow(plan.created)

    def _print_plan(self, plan):
        self.stdout.write(f"dry run: {len(plan.jobs)} job(s) for {plan.images} images; nothing sent to AWS")
        for job in plan.jobs:
            self.stdout.write(f"\n== {job.name}: labels {', '.join(job.labels)}")
            for uri, text in job.files.items():
                lines = text.splitlines()
                self.stdout.write(f"-- {uri} ({len(text.encode()):,} bytes)")
                self.stdout.write("\n".join(lines[:SHOWN_LINES] if uri.endswith(".manifest") else lines))
                if uri.endswith(".manifest") and len(lines) > SHOWN_LINES:
                    self.stdout.write(f"... {len(lines) - SHOWN_LINES} more lines")
            self.stdout.write("-- CreateLabelingJob request:")
            self.stdout.write(json.dumps(job.request, indent=2))
        if plan.cors_missing:
            self.stdout.write(self.style.WARNING(cors_instructions(plan.cors_missing)))
