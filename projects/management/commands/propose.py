from django.core.management.base import BaseCommand, CommandError

from projects import runs as lifecycle
from projects.management.progress import ProgressBar
from projects.models import ModelVersion, RunStatus
from projects.proposals.rekognition import RekognitionError, stop_model
from projects.proposals.runs import (
    DEFAULT_BATCH_SIZE,
    ProposalRunError,
    create_proposal_run,
    run_proposals,
)
from projects.proposals.tasks import start_proposal_run
from projects.provisioning import ProjectSetupError, find_iteration, find_model_version

SHOWN_FAILURES = 20


class Command(BaseCommand):
    help = (
        "Run a model over an iteration's images and store its proposals, e.g. "
        "propose logos/v2 --model-version logos.v1 --concurrency 8. Images already done by that "
        "model are skipped, so running it again resumes."
    )

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="PROJECT/ITERATION")
        parser.add_argument("--model-version", required=True, metavar="NAME")
        parser.add_argument("--concurrency", type=int, default=4, help="parallel model calls (1-32)")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
        parser.add_argument(
            "--background", action="store_true",
            help="queue the run for a worker (manage.py db_worker) instead of running it here",
        )
        parser.add_argument(
            "--stop-model", action="store_true",
            help="stop the Rekognition model when the run ends, so it stops being billed per "
                 "inference unit hour (foreground runs only)",
        )

    def handle(self, *args, ref, model_version, concurrency, batch_size, background, stop_model, **options):
        if background and stop_model:
            raise CommandError("--stop-model works with foreground runs only: stop the model with "
                               "'manage.py stop_model' once the background run is done")
        try:
            iteration = find_iteration(ref)
            version = find_model_version(project=iteration.project, name=model_version)
            if background:
                run = start_proposal_run(iteration=iteration, model_version=version, concurrency=concurrency)
                self.stdout.write(f"Queued proposal run #{run.pk} of {version.name} on {iteration}.")
                return
            run = create_proposal_run(iteration=iteration, model_version=version, concurrency=concurrency)
        except (ProjectSetupError, ProposalRunError) as error:
            raise CommandError(str(error)) from None
        try:
            run = run_proposals(run=run, batch_size=max(batch_size, 1), progress=ProgressBar("Proposing"))
        except KeyboardInterrupt:
            lifecycle.finish(run, RunStatus.STOPPED, error="interrupted")
            raise CommandError("interrupted: run the same command again to resume") from None
        try:
            self._report(run)
        finally:
            if version.kind == ModelVersion.Kind.REKOGNITION:
                self._billing(iteration.project, version, stop_model)

    def _billing(self, project, version, stop):
        """A Rekognition model bills per inference unit hour until stopped: stop it, or say so."""
        if not stop:
            self.stdout.write(self.style.WARNING(
                f"{version.name} keeps running and is billed per inference unit hour: stop it with "
                f"'manage.py stop_model {project.slug} --model-version {version.name}' (or pass "
                "--stop-model next time)."
            ))
            return
        try:
            stop_model(model_version=version)
        except RekognitionError as error:
            self.stdout.write(self.style.ERROR(
                f"{version.name} could not be stopped ({error}): it is still billed per inference unit "
                f"hour; stop it with 'manage.py stop_model {project.slug} --model-version {version.name}'"
            ))
            return
        self.stdout.write(f"{version.name}: {version.status} (stopped after the run, no longer billed "
                          "once stopped).")

    def _report(self, run):
        failures = run.outcomes.filter(ok=False).select_related("image").order_by("image__position")
        for outcome in failures[:SHOWN_FAILURES]:
            self.stdout.write(f"failed {outcome.image.name}: {outcome.error_code}: {outcome.error}")
        if run.failed > SHOWN_FAILURES:
            self.stdout.write(f"... and {run.failed - SHOWN_FAILURES} more failed images.")
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(run.error)
        seconds = (run.finished_at - run.started_at).total_seconds()
        style = self.style.WARNING if run.failed else self.style.SUCCESS
        self.stdout.write(style(
            f"{run.iteration}: {run.done} of {run.total} images done, {run.failed} failed, "
            f"{run.proposals} proposals from {run.model_version.name} ({seconds:.1f} s)."
        ))
