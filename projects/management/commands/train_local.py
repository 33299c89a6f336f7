from django.core.management.base import BaseCommand, CommandError

from projects.local_model.learning import train_local_model
from projects.local_model.training import TrainingError
from projects.management.progress import ProgressBar
from projects.provisioning import ProjectSetupError, find_iteration, find_project


class Command(BaseCommand):
    help = (
        "Train a local model version (Loupe's offline detector) from reviewed iterations, e.g. "
        "train_local logos --from v1,v2 --name v2 --held-out test. With --held-out, per-label "
        "thresholds are chosen by cross-validation on the training images and the F1 is measured on "
        "that iteration (and, beside it, the F1 at thresholds tuned on it, as Rekognition reports)."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", metavar="PROJECT")
        parser.add_argument("--from", dest="sources", required=True, metavar="ITER[,ITER]",
                            help="iterations whose reviewed boxes train the model")
        parser.add_argument("--name", required=True, help="name of the new model version (e.g. v2)")
        parser.add_argument("--held-out", metavar="ITER", help="reviewed iteration to measure F1 on")
        parser.add_argument("--detector", choices=("trained", "template"), default="trained",
                            help="trained: HOG + linear SVM (default); template: the older template matcher")

    def handle(self, *args, project, sources, name, held_out, **options):
        try:
            found = find_project(project)
            iterations = [find_iteration(ref, project=found) for ref in sources.split(",") if ref.strip()]
            held = find_iteration(held_out, project=found) if held_out else None
            model = train_local_model(
                project=found, iterations=iterations, name=name, held_out=held,
                progress=ProgressBar("Learning"), detector_name=options["detector"],
            )
        except (ProjectSetupError, TrainingError) as error:
            raise CommandError(str(error)) from None
        f1 = "no held-out F1"
        if model.f1 is not None:
            tuned = model.evaluation.get("f1_tuned_on_test")
            f1 = (f"F1 {model.f1:.3f} on {held.name} at thresholds chosen by cross-validation on the "
                  f"training images (precision {model.evaluation.get('precision', 0):.3f}, recall "
                  f"{model.evaluation.get('recall', 0):.3f})")
            if tuned is not None:
                f1 += f"; {tuned:.3f} with thresholds tuned on {held.name} (as Rekognition reports)"
        thresholds = ", ".join(
            f"{label.name} {model.threshold_for(label.pk):.0f}" for label in found.labels.order_by("name")
        )
        self.stdout.write(self.style.SUCCESS(
            f"Model {found.slug}:{model.name} is ready: {model.training_images} training images, "
            f"{f1}; thresholds {thresholds}."
        ))

