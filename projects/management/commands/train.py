import time

from django.core.management.base import BaseCommand, CommandError

from projects.aws.rekognition import RekognitionError
from projects.management.progress import ProgressBar
from projects.provisioning import ProjectSetupError, find_iteration
from projects.training import service
from projects.training.service import TrainingError, TrainingRequest


class Command(BaseCommand):
    help = (
        "Train the next model version from an iteration's reviewed boxes, on Rekognition Custom "
        "Labels or with Loupe's offline detector, e.g. train logos/v2 --version-name v2 --backend "
        "rekognition --test-from logos/v1. Rekognition: the manifests are validated and published "
        "to the project's output location, the TRAIN and TEST datasets created and the version "
        "trained; training time is billed by AWS. Without --wait the run is queued and "
        "'manage.py db_worker' follows it to its end."
    )

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="PROJECT/ITERATION")
        parser.add_argument("--version-name", required=True, help="name of the new model version (e.g. v2)")
        parser.add_argument("--backend", choices=service.BACKENDS, required=True)
        test = parser.add_mutually_exclusive_group()
        test.add_argument("--test-from", metavar="PROJECT/ITERATION",
                          help="a reviewed iteration to test on (never trained on)")
        test.add_argument("--test-fraction", type=float, metavar="F",
                          help="split this share of the iteration's images off as the test set (rekognition)")
        parser.add_argument("--include-earlier", action="store_true",
                            help="local: learn from the earlier iterations' reviewed boxes too")
        parser.add_argument("--replace-datasets", action="store_true",
                            help="rekognition: delete the project's existing TRAIN and TEST datasets first")
        parser.add_argument("--wait", action="store_true",
                            help="rekognition: follow the training here until it ends instead of queueing it")
        parser.add_argument("--poll-seconds", type=float, default=service.POLL_SECONDS,
                            help="--wait: seconds between polls")

    def handle(self, *args, ref, version_name, backend, test_from, test_fraction, include_earlier,
               replace_datasets, wait, poll_seconds, **options):
        try:
            iteration = find_iteration(ref)
            test = _test_iteration(iteration, test_from) if test_from else None
            request = TrainingRequest(
                iteration=iteration, version_name=version_name, backend=backend, test_from=test,
                test_fraction=test_fraction, include_earlier=include_earlier,
                replace_datasets=replace_datasets,
            )
            if backend == service.LOCAL:
                return self._local(request)
            if wait:
                return self._follow(request, poll_seconds)
            from projects.training.tasks import start_training

            run = start_training(request)
        except (ProjectSetupError, TrainingError, RekognitionError) as error:
            raise CommandError(str(error)) from None
        self._report(run, queued=True)

    def _local(self, request):
        from projects.local_model.learning import train_local_model

        service.check_request(request)
        model = train_local_model(
            project=request.project, iterations=service.training_iterations(request),
            name=request.version_name, held_out=request.test_from,
            progress=ProgressBar("Learning"),
        )
        f1 = f"F1 {model.f1:.3f} on {request.test_from.name}" if model.f1 is not None else "no test F1"
        self.stdout.write(self.style.SUCCESS(
            f"Local model {request.project.slug}:{model.name} is ready: {model.training_images} "
            f"training images, {f1}."
            + (f" With thresholds tuned on {request.test_from.name} itself (as Rekognition reports): "
               f"F1 {model.evaluation['f1_tuned_on_test']:.3f}."
               if model.f1 is not None and "f1_tuned_on_test" in (model.evaluation or {}) else "")
        ))

    def _follow(self, request, poll_seconds):
        run = service.begin(service.create_rekognition_run(request))
        self.stdout.write(f"Training run #{run.pk}: {run.message} (training time is billed by AWS).")
        shown = [None]

        def on_step(run):
            state = (run.details.get("phase"), run.model_version.status if run.model_version else "")
            if state != shown[0]:
                shown[0] = state
                self.stdout.write(f"  {state[0]}: {state[1]} {run.model_version.status_message}".rstrip())

        service.follow(run, sleep=time.sleep, on_step=on_step, poll_seconds=poll_seconds)
        self._report(run, queued=False)

    def _report(self, run, *, queued):
        for problem in run.details.get("problems", []):
            where = problem["image"] or problem["source_ref"]
            for message in problem["errors"] + problem["warnings"]:
                self.stdout.write(f"{problem['set']} {where}: {message}")
        for message in run.details.get("manifest_errors", []):
            self.stdout.write(f"manifest: {message}")
        if run.status == "failed":
            raise CommandError(f"training run #{run.pk} failed: {run.error}")
        model = run.model_version
        if run.status == "succeeded":
            f1 = f"F1 {model.f1:.3f}" if model.f1 is not None else "no F1"
            names = dict(run.project.labels.values_list("pk", "name"))
            thresholds = ", ".join(
                f"{names[label_id]} {model.threshold_for(label_id):g}" for label_id in sorted(names)
                if str(label_id) in model.thresholds
            )
            self.stdout.write(self.style.SUCCESS(
                f"Model {run.project.slug}:{model.name} trained on Rekognition: {model.status}, {f1}; "
                f"thresholds {thresholds or 'none'}."
            ))
        elif queued:
            self.stdout.write(self.style.SUCCESS(
                f"Queued training run #{run.pk}: {run.message}. 'manage.py db_worker' follows it to "
                "its end; the iteration page shows its progress."
            ))


def _test_iteration(iteration, ref):
    if "/" not in ref:
        ref = f"{iteration.project.slug}/{ref}"
    test = find_iteration(ref)
    if test.project_id != iteration.project_id:
        raise ProjectSetupError(f"the test iteration {ref} belongs to another project")
    return test
