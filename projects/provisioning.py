"""Creating projects, iterations and memberships: the same functions serve views and commands."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from projects.models import LABEL_COLORS, Iteration, LabelClass, Membership, Project


class ProjectSetupError(Exception):
    """Invalid input for creating a project, iteration or membership; the message says why."""


def _validate(instance, exclude=()):
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as error:
        parts = [f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items()]
        raise ProjectSetupError("; ".join(parts)) from None


def parse_labels(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    if len(set(names)) != len(names):
        raise ProjectSetupError("label names must be unique")
    return names


@transaction.atomic
def create_project(*, slug, name, labels=(), region=None, bucket="", owner=None):
    """region: the project's AWS region; by default AWS_REGION, as the README says."""
    if Project.objects.filter(slug=slug).exists():
        raise ProjectSetupError(f"project {slug!r} already exists")
    project = Project(slug=slug, name=name or slug, region=region or settings.AWS_REGION, image_bucket=bucket)
    _validate(project)
    project.save()
    add_labels(project=project, names=labels)
    if owner is not None:
        Membership.objects.create(project=project, user=owner, role=Membership.Role.OWNER)
    return project


def add_labels(*, project, names):
    """Append labels after the existing ones; the first nine get hotkeys 1..9."""
    existing = list(project.labels.order_by("order"))
    taken = {label.hotkey for label in existing}
    created = []
    for offset, label_name in enumerate(names):
        order = len(existing) + offset
        free = [key for key in range(1, 10) if key not in taken]
        hotkey = free[0] if free else None
        taken.add(hotkey)
        label = LabelClass(
            project=project, name=label_name, order=order, hotkey=hotkey,
            color=LABEL_COLORS[order % len(LABEL_COLORS)],
        )
        _validate(label, exclude=["project"])
        created.append(label)
    try:
        with transaction.atomic():
            return LabelClass.objects.bulk_create(created)
    except IntegrityError:
        raise ProjectSetupError("a label with one of these names already exists") from None


def create_iteration(*, project, name):
    if project.iterations.filter(name=name).exists():
        raise ProjectSetupError(f"iteration {project.slug}/{name} already exists")
    iteration = Iteration(project=project, name=name)
    _validate(iteration, exclude=["project", "shown_model"])
    iteration.save()
    return iteration


def add_member(*, project, username, role):
    if role not in Membership.Role.values:
        raise ProjectSetupError(f"role must be one of {', '.join(Membership.Role.values)}")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ProjectSetupError(
            f"no user named {username!r}: create one with 'manage.py createsuperuser' "
            "or in the admin first"
        )
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


# -- resolving what a command names: the one place for "PROJECT", "PROJECT/ITERATION", a model -------

def find_project(slug):
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise ProjectSetupError(f"no project {slug!r}: create it with 'manage.py create_project'")
    return project


def find_iteration(ref, *, project=None):
    """'PROJECT/ITERATION' -> Iteration; with `project`, ref is an iteration name in that project.
    ProjectSetupError names what is missing."""
    if project is None:
        slug, sep, name = ref.partition("/")
        if not sep or not slug or not name:
            raise ProjectSetupError(f"{ref!r} is not PROJECT/ITERATION (e.g. logos/v2)")
        project = find_project(slug)
    else:
        name = ref.strip()
    iteration = project.iterations.filter(name=name).first()
    if iteration is None:
        raise ProjectSetupError(
            f"project {project.slug!r} has no iteration {name!r}: "
            f"create it with 'manage.py create_iteration {project.slug}/{name}'"
        )
    return iteration


def find_model_version(*, project, name):
    """The project's model version called `name`, or ProjectSetupError listing the ones it has."""
    model_version = project.model_versions.filter(name=name).first()
    if model_version is None:
        known = ", ".join(project.model_versions.values_list("name", flat=True)) or "none yet"
        raise ProjectSetupError(
            f"project {project.slug!r} has no model version {name!r} (it has: {known}); "
            f"Rekognition versions appear after 'manage.py sync_models {project.slug}'"
        )
    return model_version
