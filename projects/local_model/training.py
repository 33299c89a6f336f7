"""Training requests for local ModelVersions (Loupe's offline detector): what may be trained.

The web process imports this module (the training views check and queue requests) but never
trains: the learning itself is in projects.local_model.learning, which loads OpenCV.
"""


from projects.models import Image, ModelVersion

READY, TRAINING, FAILED = ModelVersion.Status.READY, ModelVersion.Status.TRAINING, ModelVersion.Status.FAILED


class TrainingError(Exception):
    """Training cannot start or finish as asked; the message says what to do."""


def reviewed_images(iterations):
    ids = [iteration.pk for iteration in iterations]
    return (
        Image.objects.filter(iteration_id__in=ids, status=Image.Status.REVIEWED)
        .select_related("iteration__project")
        .prefetch_related("boxes__label")
        .order_by("iteration__created_at", "iteration_id", "position", "id")
    )


def truth_of(image):
    return [(box.label.name, (box.left, box.top, box.width, box.height)) for box in image.boxes.all()]


def check_request(*, project, iterations, name, held_out=None):
    if not iterations:
        raise TrainingError("name at least one iteration to train from")
    for iteration in [*iterations, *([held_out] if held_out else [])]:
        if iteration.project_id != project.pk:
            raise TrainingError(f"iteration {iteration} belongs to another project than {project.slug}")
    if held_out is not None and held_out.pk in {iteration.pk for iteration in iterations}:
        raise TrainingError(f"the held-out iteration {held_out.name} cannot also be trained on")
    if not name or len(name) > 255:
        raise TrainingError("the model needs a name of 1 to 255 characters (e.g. v2)")
    if name_taken(project=project, name=name):
        raise TrainingError(f"project {project.slug!r} already has a model version named {name!r}")


def name_taken(*, project, name):
    # A failed attempt leaves its row to show why; it does not take the name.
    taken = project.model_versions.filter(name=name).exclude(kind=ModelVersion.Kind.LOCAL, status=FAILED)
    return taken.exists()
