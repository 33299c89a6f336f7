"""Metrics from review work, checked against small cases computed by hand."""

import json

import pytest
from django.core.management import CommandError, call_command

from projects.dashboard import metrics
from projects.models import Image, Iteration, IterationMetrics
from reviewer.models import Box
from tests.factories import (
    label,
    make_box,
    make_image,
    make_iteration,
    make_model_version,
    make_project,
    make_proposal,
    make_review,
    make_user,
    thresholds,
)

pytestmark = pytest.mark.django_db

ACCEPTED, ADJUSTED, ADDED = Box.Origin.ACCEPTED, Box.Origin.ADJUSTED, Box.Origin.ADDED


def accepted(proposal):
    return {"proposal": proposal.pk, "verdict": "accepted", "label": proposal.label_id}


def adjusted(proposal, label_id=None, relabeled=False):
    return {"proposal": proposal.pk, "verdict": "adjusted", "label": label_id or proposal.label_id,
            "relabeled": relabeled}


def rejected(proposal, hidden=False):
    return {"proposal": proposal.pk, "verdict": "rejected", "label": proposal.label_id,
            "confidence": proposal.confidence, "hidden": hidden}


def added(label_id):
    return {"proposal": None, "verdict": "added", "label": label_id}


@pytest.fixture
def case():
    """Five reviewed images and one pending, thresholds aws-logo 50 and smile-logo 40.

    A: aws found (P1 90), found again (P2 80: a duplicate), smile found below its threshold (P3 30).
    B: a smile proposed as aws (P4 70, relabeled), a smile where there is none (P5 45, hidden by
       the reviewer's slider), an aws nobody proposed (added).
    C: nothing there, smile proposed at 95 (P6); reviewed twice, accepted first and rejected last.
    D: pending: its proposal counts nowhere.  E: imported truth (an aws), no proposals, no review.
    P8 is another model's proposal on A: it counts nowhere either.
    """
    project = make_project("logos")
    model = make_model_version(
        project, "v1", thresholds=thresholds(project, {"aws-logo": 50, "smile-logo": 40})
    )
    other = make_model_version(project, "v0")
    iteration = make_iteration(project, "v2", shown_model=model)
    alice, bob = make_user("alice"), make_user("bob")
    aws, smile = label(project, "aws-logo").pk, label(project, "smile-logo").pk
    a, b, c, d, e = (make_image(iteration) for _ in range(5))

    p1 = make_proposal(a, "aws-logo", (0, 0, 100, 100), confidence=90, model_version=model)
    p2 = make_proposal(a, "aws-logo", (5, 5, 100, 100), confidence=80, model_version=model)
    p3 = make_proposal(a, "smile-logo", (205, 200, 50, 50), confidence=30, model_version=model)
    make_proposal(a, "aws-logo", (0, 0, 100, 100), confidence=99, model_version=other)
    make_box(a, "aws-logo", (0, 0, 100, 100), origin=ACCEPTED, proposal=p1, iou=1.0)
    make_box(a, "smile-logo", (200, 200, 50, 50), origin=ADJUSTED, proposal=p3, iou=0.82)
    make_review(a, alice, elapsed_ms=10_000, decisions=[accepted(p1), adjusted(p3), rejected(p2)])

    p4 = make_proposal(b, "aws-logo", (0, 0, 60, 60), confidence=70, model_version=model)
    p5 = make_proposal(b, "smile-logo", (500, 500, 30, 30), confidence=45, model_version=model)
    make_box(b, "smile-logo", (0, 0, 60, 60), origin=ADJUSTED, proposal=p4, iou=1.0, relabeled=True)
    make_box(b, "aws-logo", (300, 300, 40, 40), origin=ADDED)
    make_review(b, bob, elapsed_ms=20_000,
                decisions=[adjusted(p4, smile, True), rejected(p5, hidden=True), added(aws)])

    p6 = make_proposal(c, "smile-logo", (10, 10, 20, 20), confidence=95, model_version=model)
    make_review(c, alice, elapsed_ms=4_000, decisions=[accepted(p6)])
    make_review(c, alice, elapsed_ms=6_000, decisions=[rejected(p6)], no_objects=True)

    make_proposal(d, "aws-logo", (0, 0, 100, 100), confidence=99, model_version=model)
    make_box(e, "aws-logo", (0, 0, 10, 10))
    Image.objects.filter(pk=e.pk).update(status=Image.Status.REVIEWED)
    return iteration


def test_precision_recall_and_f1_at_the_models_thresholds(case):
    figures = metrics.for_iteration(case)

    # aws: P1 found A's; P2 (a duplicate) and P4 (wrong label) are false; B's and E's were missed.
    # smile: P3 found A's but is below 40; P5 and P6 are false; A's and B's count as missed.
    assert figures["per_label"] == {
        "aws-logo": {"precision": 0.3333, "recall": 0.3333, "f1": 0.3333, "tp": 1, "fp": 2, "fn": 2,
                     "objects": 3, "threshold": 50.0},
        "smile-logo": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 2, "fn": 2,
                       "objects": 2, "threshold": 40.0},
    }
    assert figures["overall"] == {"precision": 0.2, "recall": 0.2, "f1": 0.2, "tp": 1, "fp": 4, "fn": 4}


def test_the_precision_recall_curve_over_whole_number_thresholds(case):
    curve = metrics.for_iteration(case)["curve"]

    assert curve["thresholds"] == list(range(101))
    # Everything kept: 2 of 6 detections found 2 of 5 objects.
    assert curve["overall"][0] == [0.3333, 0.4]
    assert curve["per_label"]["smile-logo"][30] == [0.3333, 0.5]
    assert curve["per_label"]["smile-logo"][31] == [0.0, 0.0]
    assert curve["per_label"]["aws-logo"][90] == [1.0, 0.3333]
    assert curve["overall"][91] == [0.0, 0.0]  # only P6 (95, false) is left
    assert curve["overall"][96] == [None, 0.0]  # nothing kept


def test_what_reviewers_did_with_the_proposals(case):
    figures = metrics.for_iteration(case)

    # The last review of C counts (rejected), not the first (accepted); P5 was hidden, not rejected.
    assert figures["proposals"] == {
        "total": 6, "accepted": 1, "adjusted": 2, "rejected": 2, "hidden": 1, "undecided": 0,
        "shares": {"accepted": 0.1667, "adjusted": 0.3333, "rejected": 0.3333, "hidden": 0.1667,
                   "undecided": 0.0},
    }
    assert figures["added"] == 1
    assert figures["relabels"] == [{"from": "aws-logo", "to": "smile-logo", "count": 1}]


def test_reviewer_throughput_and_time_left(case):
    figures = metrics.for_iteration(case)

    assert figures["reviewers"] == [
        {"reviewer": "alice", "reviews": 3, "median_seconds": 6.0, "images_per_hour": 540.0},
        {"reviewer": "bob", "reviews": 1, "median_seconds": 20.0, "images_per_hour": 180.0},
    ]
    # 4, 6, 10 and 20 seconds: median 8; 4 reviews in 40 s.
    assert figures["throughput"] == {"reviews": 4, "median_seconds": 8.0, "images_per_hour": 360.0}
    assert (figures["pending"], figures["time_left_seconds"]) == (1, 8.0)


def test_proposals_no_review_decided_and_untimed_reviews():
    """A review saved while no model was shown decides nothing about the model's proposals; a review
    with no time recorded counts as a review but not towards the pace."""
    project = make_project("logos")
    model = make_model_version(project, "v1")
    iteration = make_iteration(project, "v2", shown_model=model)
    image = make_image(iteration)
    make_proposal(image, "aws-logo", (0, 0, 50, 50), confidence=60, model_version=model)
    make_box(image, "aws-logo", (0, 0, 50, 50), origin=ADDED)
    make_review(image, make_user("carol"), elapsed_ms=0, decisions=[added(label(project, "aws-logo").pk)])

    figures = metrics.for_iteration(iteration)

    assert figures["overall"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "tp": 1, "fp": 0, "fn": 0}
    assert (figures["proposals"]["undecided"], figures["proposals"]["total"]) == (1, 1)
    assert figures["throughput"] == {"reviews": 1, "median_seconds": None, "images_per_hour": None}
    assert figures["time_left_seconds"] is None


def test_duplicates_of_one_object_and_an_empty_iteration():
    project = make_project("logos")
    model = make_model_version(project, "v1", thresholds=thresholds(project, {"aws-logo": 10}))
    iteration = make_iteration(project, "v2", shown_model=model)
    assert metrics.for_iteration(iteration)["overall"] == {
        "precision": 0.0, "recall": 0.0, "f1": 1.0, "tp": 0, "fp": 0, "fn": 0}
    image = make_image(iteration)
    for confidence in (20, 90, 50):
        make_proposal(image, "aws-logo", (0, 0, 40, 40), confidence=confidence, model_version=model)
    make_box(image, "aws-logo", (0, 0, 40, 40))
    Image.objects.filter(pk=image.pk).update(status=Image.Status.REVIEWED)

    figures = metrics.for_iteration(iteration)

    assert figures["per_label"]["aws-logo"]["tp"] == 1
    assert figures["overall"] == {"precision": 0.3333, "recall": 1.0, "f1": 0.5, "tp": 1, "fp": 2, "fn": 0}
    # The most confident of the three found the object: at 90 precision is perfect.
    assert figures["curve"]["per_label"]["aws-logo"][90] == [1.0, 1.0]


def stated(iteration):
    (stated,) = metrics.with_state(Iteration.objects.filter(pk=iteration.pk))
    return stated


def aws_tp(data, project):
    return data["labels"][str(label(project, "aws-logo").pk)]["tp"]


def test_stored_metrics_are_read_in_one_query_while_nothing_changes(case, django_assert_num_queries):
    labels = list(case.project.labels.all())
    first = metrics.current([stated(case)], labels=labels)[case.pk]
    state = stated(case)

    with django_assert_num_queries(1):
        assert metrics.current([state], labels=labels)[case.pk] == first


@pytest.fixture
def passes(monkeypatch):
    """The metrics passes made: None for a whole one, else the images folded in."""
    made, real = [], metrics.compute

    def counted(*args, **kwargs):
        made.append(kwargs.get("image_ids"))
        return real(*args, **kwargs)

    monkeypatch.setattr(metrics, "compute", counted)
    return made


def test_a_first_review_is_folded_in_and_matches_a_whole_pass(case, passes):
    labels = list(case.project.labels.all())
    before = metrics.current([stated(case)], labels=labels)[case.pk]
    passes.clear()
    pending = case.images.get(status=Image.Status.PENDING)
    make_box(pending, "aws-logo", (0, 0, 100, 100), origin=ACCEPTED)
    make_review(pending, make_user("dave"), elapsed_ms=2_000)

    folded = metrics.current([stated(case)], labels=labels)[case.pk]

    assert passes == [{pending.pk}]
    assert (aws_tp(before, case.project), aws_tp(folded, case.project)) == (1, 2)
    whole = metrics.compute(case, case.shown_model, labels)
    assert {k: v for k, v in folded.items() if k != "reviewed"} == whole
    assert IterationMetrics.objects.get().data == folded


def test_a_correction_or_a_threshold_change_recomputes_everything(case, passes):
    labels = list(case.project.labels.all())
    metrics.current([stated(case)], labels=labels)
    passes.clear()

    corrected = case.images.filter(status=Image.Status.REVIEWED).first()
    make_review(corrected, make_user("erin"), elapsed_ms=3_000)
    metrics.current([stated(case)], labels=labels)
    model = case.shown_model
    model.thresholds = thresholds(case.project, {"aws-logo": 50, "smile-logo": 20})
    model.save()

    assert metrics.for_iteration(case)["per_label"]["smile-logo"]["tp"] == 1
    assert passes == [None, None]


def test_metrics_command_prints_one_json_object(case, capsys):
    call_command("metrics", "logos/v2", "--json")

    figures = json.loads(capsys.readouterr().out)
    assert figures["overall"] == {"precision": 0.2, "recall": 0.2, "f1": 0.2, "tp": 1, "fp": 4, "fn": 4}
    assert set(figures["per_label"]["aws-logo"]) >= {"precision", "recall", "f1", "tp", "fp", "fn"}
    assert (figures["iteration"], figures["model"]) == ("logos/v2", "v1")


def test_metrics_command_table_and_another_model(case, capsys):
    call_command("metrics", "logos/v2")
    out = capsys.readouterr().out
    assert "Model v1 on logos/v2, 4 reviewed images" in out
    assert "overall" in out and "0.200" in out
    assert "Relabeled: aws-logo -> smile-logo (1)" in out

    call_command("metrics", "logos/v2", "--model-version", "v0", "--json")
    other = json.loads(capsys.readouterr().out)
    # v0 proposed only P8 on A (aws 99 over A's aws, default threshold 50): 1 of 5 objects found.
    assert other["overall"] == {"precision": 1.0, "recall": 0.2, "f1": 0.3333, "tp": 1, "fp": 0, "fn": 4}
    assert (other["model"], other["reviewed"]) == ("v0", 4)
    assert list(IterationMetrics.objects.values_list("model_version__name", flat=True)) == ["v1"]

    with pytest.raises(CommandError, match="has no model version 'v9'"):
        call_command("metrics", "logos/v2", "--model-version", "v9")
    v3 = make_iteration(case.project, "v3")
    with pytest.raises(CommandError, match="no model proposed on logos/v3"):
        call_command("metrics", "logos/v3")
    make_image(v3)
    call_command("metrics", "logos/v3", "--model-version", "v1")
    assert capsys.readouterr().out == (
        "Model v1 on logos/v3: no reviewed images yet, nothing to measure (1 images to review).\n")
