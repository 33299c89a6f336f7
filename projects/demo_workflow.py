"""The demo's steps as plain functions: a project built from generated data, proposals from the
local model, simulated reviewers, the manifest export and the next model version.

`manage.py setup_demo` runs the first steps for people to click through; `manage.py demo_loop`
runs them all headless in a throwaway project. Simulated reviewers go through the same service
functions as the review page (claim_next, submit_review), so the loop exercises the real thing.
"""

from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db.models import Q

from projects import demodata
from projects.imports import import_folder
from projects.manifest import DEFAULT_THRESHOLD, write_manifest
from projects.manifest_checks import validate_lines
from projects.manifest_import import import_manifest
from projects.models import Image, Iteration, ModelVersion, Project, ProposalOutcome, RunStatus
from projects.proposals import create_proposal_run, run_proposals
from projects.provisioning import create_iteration, create_project
from projects.training import READY, train_local_model
from reviewer import geometry
from reviewer.models import Box, Review
from reviewer.queue import claim_next
from reviewer.review import BoxInput, submit_review

# A reviewer leaves a proposal this close to the object as it is, and redraws anything looser.
ACCEPT_IOU = 0.85
# Below this overlap a proposal is not the object at all: rejected, and the object drawn anew.
ADJUST_IOU = 0.3
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
    existing = project.model_versions.filter(name=name, kind=ModelVersion.Kind.LOCAL, status=READY).first()
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
        if iteration.model_version_id != model_version.pk:
            Iteration.objects.filter(pk=iteration.pk).update(model_version=model_version)
        return None
    run = create_proposal_run(
        iteration=iteration, model_version=model_version, concurrency=PROPOSAL_CONCURRENCY
    )
    run = run_proposals(run=run, progress=progress)
    if run.status != RunStatus.SUCCEEDED:
        raise DemoError(f"proposals on {iteration} stopped: {run.error or run.status}")
    return run


# -- simulated reviewers ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SimulatedReview:
    boxes: list  # [BoxInput]
    hidden: list  # ids of proposals below their label's threshold, as the slider hides them


def review_against_truth(*, image, truth, labels):
    """What a careful reviewer submits for an image whose objects are `truth` ([DemoObject]).

    Only proposals at or above their label's threshold are shown (the review page's default).
    Each object takes the closest unused shown proposal: kept untouched when it already fits, else
    redrawn (and relabelled) to the object; objects no proposal found are drawn from scratch; every
    other shown proposal is rejected.
    """
    model_version = image.iteration.model_version
    thresholds = (model_version.thresholds or {}) if model_version else {}
    proposals = list(image.proposals.filter(model_version=model_version, left__isnull=False)
                     .select_related("label")) if model_version else []
    shown = [p for p in proposals if p.confidence >= thresholds.get(p.label.name, DEFAULT_THRESHOLD)]
    hidden = [p.pk for p in proposals if p not in shown]
    boxes, used = [], set()
    for obj in truth:
        rect = geometry.Rect(*obj.box)
        scored = [
            (geometry.iou(rect, _shown_rect(p, image)), p) for p in shown if p.pk not in used
        ]
        overlap, proposal = max(scored, key=lambda pair: pair[0], default=(0.0, None))
        label_id = labels[obj.label]
        if proposal is None or overlap < ADJUST_IOU:
            boxes.append(BoxInput(label_id, *obj.box))
            continue
        used.add(proposal.pk)
        if overlap >= ACCEPT_IOU and proposal.label_id == label_id:
            boxes.append(BoxInput(label_id, *_shown_rect(proposal, image), proposal_id=proposal.pk))
        else:
            boxes.append(BoxInput(label_id, *obj.box, proposal_id=proposal.pk))
    return SimulatedReview(boxes, hidden)


def _shown_rect(proposal, image):
    return geometry.normalized_proposal(
        geometry.Rect(proposal.left, proposal.top, proposal.width, proposal.height),
        image.width, image.height,
    )


def simulate_reviews(*, iteration, truth, reviewers, progress=None):
    """Reviewers take turns claiming the next image and submitting the truth; returns the count.

    truth: {image name: [DemoObject]} (the generator's ground truth).
    """
    labels = dict(iteration.project.labels.values_list("name", "id"))
    total = iteration.images.count()
    reviewed = 0
    while True:
        reviewer = reviewers[reviewed % len(reviewers)]
        image = claim_next(iteration=iteration, user=reviewer)
        if image is None:
            return reviewed
        if image.name not in truth:
            raise DemoError(f"{image.name} in {iteration} is not part of the generated data")
        review = review_against_truth(image=image, truth=truth[image.name], labels=labels)
        submit_review(
            image=image, reviewer=reviewer, version=image.version, boxes=review.boxes,
            no_objects=not review.boxes, hidden_proposal_ids=review.hidden,
        )
        reviewed += 1
        if progress:
            progress(reviewed, total)


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
    # Reviews and boxes protect their reviewers and labels: they go first.
    Review.objects.filter(image__iteration__project=project).delete()
    Box.objects.filter(image__iteration__project=project).delete()
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
