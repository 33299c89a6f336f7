"""Learning a local model (Loupe's offline detector) from reviewed boxes, and measuring it.

Loads OpenCV through the detector: only workers and commands import this module.
The same functions serve the training task, `manage.py train_local`, the demo setup and the
headless demo loop.
"""

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from projects import runs as lifecycle
from projects.detections import ImageProposalError
from projects.images.storage import read_image_bytes
from projects.local_model import backends, evaluation
from projects.local_model.training import (
    FAILED,
    READY,
    TRAINING,
    TrainingError,
    check_request,
    reviewed_images,
    truth_of,
)
from projects.models import DEFAULT_THRESHOLD, ModelVersion, RunStatus

# What a training run can meet and the page can explain: shown as is, not raised to the worker.
EXPECTED_FAILURES = (TrainingError, ImageProposalError, OSError)


def load_samples(images, progress=None, *, backend=None):
    """(pixels, truth) per reviewed image; verified-empty images teach what clutter looks like."""
    backend = backend or backends.BACKENDS[backends.DEFAULT]
    images = list(images)
    samples = []
    for done, image in enumerate(images, start=1):
        samples.append((backend.decode(read_image_bytes(image)), truth_of(image)))
        if progress:
            progress(done, len(images))
    return samples


def train_local_model(*, project, iterations, name, held_out=None, progress=None, alive=None,
                      detector_name=backends.DEFAULT):
    """Learn a detector from the iterations' reviewed boxes and store it as a READY ModelVersion.

    alive() is called after every image read, learned from or evaluated (a run's heartbeat).

    Each label's threshold is chosen without the held-out set: by cross-validation on the training
    images (models learned on one fold score the other, and the threshold maximising F1 there is
    kept). With held_out (a reviewed iteration) the model's F1, precision and recall are measured
    there at those thresholds; the F1 at thresholds tuned on held_out itself (how Rekognition
    reports its "assumed threshold") is stored beside it in evaluation["f1_tuned_on_test"].
    Without held_out thresholds default and F1 stays unknown.
    """
    backend = backends.BACKENDS[detector_name]
    iterations = list(iterations)
    check_request(project=project, iterations=iterations, name=name, held_out=held_out)
    images = list(reviewed_images(iterations))
    if not any(image.boxes.all() for image in images):
        names = ", ".join(iteration.name for iteration in iterations)
        raise TrainingError(f"no reviewed boxes in {names}: review or import labeled images first")
    project.model_versions.filter(name=name, kind=ModelVersion.Kind.LOCAL, status=FAILED).delete()
    model_version = ModelVersion.objects.create(
        project=project, name=name, kind=ModelVersion.Kind.LOCAL, status=TRAINING,
        trained_from=iterations[-1], training_images=len(images),
    )
    try:
        samples = load_samples(images, progress=_each(alive), backend=backend)
        label_ids = dict(project.labels.values_list("name", "pk"))
        # The detector and the evaluation speak label names; the model stores label ids.
        by_name = {name: DEFAULT_THRESHOLD for name in label_ids}
        if held_out is not None:
            # Thresholds are chosen on the training images (cross-validated), never on held_out.
            validation = evaluation.cross_validated_matching(
                samples, backend.learn, backend.detect, progress=_each(alive)
            )
            by_name = evaluation.validation_thresholds(validation, list(label_ids))
        exemplars = backend.learn(samples, progress=_also(progress, alive))
        model_version.artifact = default_storage.save(
            f"models/{project.slug}/{name}.npz", ContentFile(exemplars.to_bytes())
        )
        model_version.evaluation = {"detector": backend.NAME}
        if held_out is not None:
            matching = evaluate(exemplars=exemplars, iteration=held_out, alive=alive, backend=backend)
            figures = evaluation.honest_figures(validation, matching, list(label_ids))
            model_version.f1 = figures["f1"]
            model_version.evaluation.update({
                "thresholds_chosen_on": "cross-validation on the training images",
                "precision": figures["precision"], "recall": figures["recall"],
                "f1_tuned_on_test": figures["f1_tuned_on_test"],
                "thresholds_tuned_on_test": figures["thresholds_tuned_on_test"],
            })
        model_version.thresholds = ModelVersion.thresholds_from(
            {label_ids[name]: value for name, value in by_name.items()}
        )
    except Exception as error:
        model_version.status, model_version.status_message = FAILED, f"{type(error).__name__}: {error}"
        model_version.save()
        raise
    model_version.status, model_version.status_message = READY, _summary(exemplars, held_out)
    model_version.save()
    return model_version


def _summary(model, held_out):
    where = f"; F1 measured on {held_out.name} at thresholds chosen by cross-validation" if held_out else ""
    return f"{model.describe()}{where}"


def _each(alive):
    return None if alive is None else lambda done, total: alive()


def _also(progress, alive):
    if alive is None or progress is None:
        return progress or _each(alive)

    def both(done, total):
        progress(done, total)
        alive()
    return both


def evaluate(*, exemplars, iteration, alive=None, backend=None):
    """Matching of the model's boxes against the iteration's reviewed truth (IoU >= 0.5)."""
    backend = backend or backends.for_model(exemplars)
    images = list(reviewed_images([iteration]))
    if not images:
        raise TrainingError(f"the held-out iteration {iteration.name} has no reviewed images")
    pairs = []
    for image in images:
        pixels = backend.decode(read_image_bytes(image))
        pairs.append((truth_of(image), backend.detect(pixels, exemplars)))
        if alive:
            alive()
    return evaluation.match_images(pairs)


# -- as a recorded background run ------------------------------------------------------------------

def run_training(*, run, iterations, name, held_out=None):
    """Execute a queued TrainingRun; failures are recorded on the run, expected ones not raised."""
    lifecycle.begin(run)
    try:
        # Unexpected errors are recorded for the page and re-raised for the worker's log.
        with lifecycle.failing(run, plain=EXPECTED_FAILURES):
            model_version = train_local_model(
                project=run.project, iterations=iterations, name=name, held_out=held_out,
                alive=lambda: lifecycle.heartbeat(run),
            )
    except EXPECTED_FAILURES:
        return run
    with transaction.atomic():
        f1 = f"F1 {model_version.f1:.3f}" if model_version.f1 is not None else "no held-out F1"
        lifecycle.finish(
            run, RunStatus.SUCCEEDED, model_version=model_version,
            message=f"{run.message}: {model_version.training_images} images, {f1}",
        )
    return run
