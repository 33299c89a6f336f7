"""The demo's steps as plain functions: a project built from generated data, proposals from the
local model, simulated reviewers, the manifest export and the next model version.

`manage.py setup_demo` runs the first steps for people to click through; `manage.py demo_loop`
runs them all headless in a throwaway project, with the simulated reviewers of
reviewer.simulation.
"""


from django.core.files.storage import default_storage
from django.db.models import Q

from projects.demo import data as demodata
from projects.images.importing import import_folder
from projects.local_model.learning import train_local_model
from projects.manifests.checks import validate_lines
from projects.manifests.export import write_manifest
from projects.manifests.importing import import_manifest
from projects.models import (
    Image,
    Iteration,
    ModelVersion,
    Project,
    ProposalOutcome,
    RunStatus,
)
from projects.proposals.runs import create_proposal_run, run_proposals
from projects.provisioning import create_iteration, create_project
from reviewer.models import Box, Review

PROPOSAL_CONCURRENCY = 2


class DemoError(Exception):
    """A demo step failed; the message says which and why."""


def ensure_project(*, slug, name):
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        project = create_project(slug=slug, name=name, labels=list(demodata.LABELS))
    if not project.published_images_uri:
        # Manifests name images by their S3 address; the demo's images are "published" under this
        # made-up address, which is also how the manifest importer finds the local copies.
        project.published_images_uri = demodata.PUBLISHED_IMAGES_URI
        project.save(update_fields=["published_images_uri"])
    return project


def ensure_iteration(project, name):
    return project.iterations.filter(name=name).first() or create_iteration(project=project, name=name)


def load_set(*, iteration, folder, set_name, labeled, progress=None):
    """Import the set's images (copied into storage) and, when labeled, its manifest as truth."""
    import_folder(iteration=iteration, folder=demodata.images_folder(folder, set_name), progress=progress)
    if not labeled:
        return
    with open(demodata.manifest_path(folder, set_name), encoding="utf-8") as lines:
        report = import_manifest(iteration=iteration, lines=lines)
    if report.errors:
        number, message = report.errors[0]
        raise DemoError(f"importing the {set_name} manifest failed at line {number}: {message}")


def ensure_model(*, project, name, iterations, held_out, progress=None):
    """The project's local model `name`, trained now unless a ready one exists."""
    existing = project.model_versions.filter(
        name=name, kind=ModelVersion.Kind.LOCAL, status=ModelVersion.Status.READY
    ).first()
    if existing is not None and default_storage.exists(existing.artifact):
        return existing
    if existing is not None:
        existing.delete()  # its exemplar file is gone (e.g. var/media was cleaned): train again
    return train_local_model(
        project=project, iterations=iterations, name=name, held_out=held_out, progress=progress
    )


def propose(*, iteration, model_version, progress=None):
    """Run the model over the iteration's images not done yet; None when all are done already."""
    done = ProposalOutcome.objects.filter(
        image__iteration=iteration, model_version=model_version, ok=True
    ).count()
    if done and done == iteration.images.count():
        if iteration.shown_model_id != model_version.pk:
            Iteration.objects.filter(pk=iteration.pk).update(shown_model=model_version)
        return None
    run = create_proposal_run(
        iteration=iteration, model_version=model_version, concurrency=PROPOSAL_CONCURRENCY
    )
    run = run_proposals(run=run, progress=progress)
    if run.status != RunStatus.SUCCEEDED:
        raise DemoError(f"proposals on {iteration} stopped: {run.error or run.status}")
    return run


def review_counts(iteration):
    """How the reviewed boxes came about: {origin: count}, plus rejected proposals."""
    counts = {origin: 0 for origin in Box.Origin.values}
    for origin in Box.objects.filter(image__iteration=iteration).values_list("origin", flat=True):
        counts[origin] += 1
    counts["rejected"] = sum(
        1 for review in Review.objects.filter(image__iteration=iteration).only("decisions")
        for decision in review.decisions if decision.get("verdict") == "rejected"
        and not decision.get("hidden")
    )
    return counts


# -- export -----------------------------------------------------------------------------------------

def export_manifest(*, iteration, path):
    """Write the iteration's manifest with Loupe's exporter and check the file with its validator."""
    with open(path, "w", encoding="utf-8") as out:
        result = write_manifest(iteration=iteration, out=out)
    with open(path, encoding="utf-8") as lines:
        report = validate_lines(lines)
    for checked in (result.report, report):
        if not checked.ok:
            raise DemoError(f"the {iteration} manifest would be refused:\n{checked.as_text()}")
    return report


# -- cleaning up a throwaway project ------------------------------------------------------------------

def delete_project(project):
    """Remove a project with its rows and stored files (images, exemplars)."""
    images = Image.objects.filter(iteration__project=project)
    files = [source for source in images.values_list("source", flat=True) if not source.startswith("s3://")]
    files += [artifact for artifact in project.model_versions.values_list("artifact", flat=True) if artifact]
    project.delete()
    for name in files:
        if default_storage.exists(name):
            default_storage.delete(name)


def free_slug(prefix):
    """prefix-1, prefix-2, ...: the first slug no project uses."""
    taken = set(Project.objects.filter(Q(slug__startswith=f"{prefix}-")).values_list("slug", flat=True))
    number = 1
    while f"{prefix}-{number}" in taken:
        number += 1
    return f"{prefix}-{number}"
