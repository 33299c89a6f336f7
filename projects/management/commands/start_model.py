from django.core.management.base import BaseCommand, CommandError

from projects.proposals.rekognition import RECOMMENDED_UNITS, RekognitionError, start_model, wait_for_model
from projects.provisioning import ProjectSetupError, find_model_version, find_project


class ModelServingCommand(BaseCommand):
    """Start or stop serving a Rekognition model version: `action` does it."""

    action = None

    def add_arguments(self, parser):
        parser.add_argument("project", metavar="PROJECT")
        parser.add_argument("--model-version", required=True, metavar="NAME")

    def handle(self, *args, project, model_version, **options):
        self.serve(project, model_version)

    def serve(self, project, model_version, **arguments):
        # Not in handle(): Django prints whatever handle() returns.
        try:
            version = find_model_version(project=find_project(project), name=model_version)
            self.action(model_version=version, **arguments)
        except (ProjectSetupError, RekognitionError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"{version.name}: {version.status}."))
        return version


def billing(units, max_units):
    scaling = f", scaling up to {max_units}" if max_units and max_units > units else ""
    return f"{units} inference unit(s){scaling}, each billed by the hour while the model runs"


class Command(ModelServingCommand):
    help = (
        "Start a Rekognition Custom Labels model version so it can propose, on --min-units inference "
        "units (default 1; AWS recommends at least 2 in production) and, with --max-units, "
        "auto-scaling up to that many. It is billed per inference unit hour while running: stop it "
        "with stop_model when done. --wait waits until it is RUNNING."
    )
    action = staticmethod(start_model)

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--min-units", type=int, default=1, metavar="N",
                            help=f"inference units to start with (AWS recommends {RECOMMENDED_UNITS}+ in "
                                 "production)")
        parser.add_argument("--max-units", type=int, metavar="N",
                            help="let Rekognition scale up to N inference units under load")
        parser.add_argument("--wait", action="store_true",
                            help="wait until the model is RUNNING, showing its status")

    def handle(self, *args, project, model_version, min_units, max_units, wait, **options):
        version = self.serve(project, model_version, min_units=min_units, max_units=max_units)
        self.stdout.write(f"Billing: {billing(min_units, max_units)}.")
        if min_units < RECOMMENDED_UNITS:
            self.stdout.write(f"Note: AWS recommends at least {RECOMMENDED_UNITS} inference units for "
                              "production traffic (--min-units).")
        if wait:
            try:
                wait_for_model(model_version=version, progress=self._progress)
            except RekognitionError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(self.style.SUCCESS(f"{version.name}: {version.status}."))
        self.stdout.write(self.style.WARNING(
            f"A running model is billed by the hour: stop it with "
            f"'manage.py stop_model {project} --model-version {version.name}' when the runs are done."
        ))

    def _progress(self, status, seconds):
        self.stdout.write(f"  {status} after {seconds} s ...")
