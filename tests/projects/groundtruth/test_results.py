import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from projects.groundtruth import results
from projects.groundtruth.dispatch import DispatchRequest, dispatch
from projects.models import GroundTruthItem, GroundTruthJob, Image
from reviewer.models import Box, Review
from reviewer.queue import claim_next
from tests.projects.groundtruth.conftest import (
    BASE,
    JOB,
    NOW,
    ROLE_ARN,
    WORKTEAM_ARN,
    describe_response,
    job_arn,
)

pytestmark = pytest.mark.django_db
OUTPUT = f"{BASE}/output/{JOB}/manifests/output/output.manifest"
LATER = NOW + timedelta(hours=2)
SIZE = {"image_size": [{"width": 1024, "height": 768, "depth": 3}]}


def adjusted(source, annotations, class_map, status, created="2026-12-03T16:42:07.123456"):
    """An output line as Ground Truth writes it: the prior attribute kept, an earlier job's attribute
    too, and this job's attribute with adjustment-status."""
    return json.dumps(
        {
            "source-ref": source,
            "loupe-proposals": {**SIZE, "annotations": []},
            "loupe-proposals-metadata": {
                "objects": [],
                "class-map": {},
                "type": "groundtruth/object-detection",
                "human-annotated": "no",
                "creation-date": "2026-12-03T15:00:00.000000",
            },
            "older-job": {
                **SIZE,
                "annotations": [{"class_id": 0, "left": 1, "top": 1, "width": 9, "height": 9}],
            },
            "older-job-metadata": {
                "objects": [{"confidence": 0.9}],
                "class-map": {"0": "smile-logo"},
                "type": "groundtruth/object-detection",
                "human-annotated": "yes",
                "creation-date": "2026-11-01T10:00:00.000000",
            },
            JOB: {**SIZE, "annotations": annotations},
            JOB + "-metadata": {
                "objects": [{"confidence": 0.81} for _ in annotations],
                "class-map": class_map,
                "type": "groundtruth/object-detection",
                "human-annotated": "yes",
                "creation-date": created,
                "job-name": f"labeling-job/{JOB}",
                "adjustment-status": status,
            },
        }
    )


OUTPUT_LINES = [
    # a: the aws-logo proposal moved, the smile-logo one deleted, a new smile-logo drawn. This
    # line's class-map numbers the labels its own way.
    adjusted(
        "s3://my-bucket/v2/a.jpg",
        [
            {"class_id": 3, "left": 12, "top": 22, "width": 98, "height": 50},
            {"class_id": 7, "left": 700, "top": 500, "width": 40, "height": 40},
        ],
        {"3": "aws-logo", "7": "smile-logo"},
        "adjusted",
    ),
    # b: no proposals, nothing drawn.
    adjusted("s3://my-bucket/v2/b.jpg", [], {}, "unadjusted"),
    # d: the proposal left as it was.
    adjusted(
        "s3://my-bucket/v2/d.jpg",
        [{"class_id": 0, "left": 50, "top": 50, "width": 200, "height": 100}],
        {"0": "aws-logo"},
        "unadjusted",
        created="2026-12-03T16:40:00Z",
    ),
    # e: a failed data object.
    json.dumps(
        {
            "source-ref": "s3://my-bucket/v2/e.jpg",
            JOB + "-metadata": {
                "failure-reason": "ClientError: Access Denied reading s3://my-bucket/v2/e.jpg",
                "job-name": f"labeling-job/{JOB}",
            },
        }
    ),
]


@pytest.fixture
def job(gt, buckets, sagemaker_stubber):
    sagemaker_stubber.add_response("create_labeling_job", {"LabelingJobArn": job_arn(JOB)}, None)
    dispatch(
        DispatchRequest(iteration=gt["iteration"], workteam_arn=WORKTEAM_ARN, role_arn=ROLE_ARN), now=NOW
    )
    return GroundTruthJob.objects.get()


def put_output(s3, lines):
    s3.put_object(Bucket="out-bucket", Key=OUTPUT[len("s3://out-bucket/") :], Body="\n".join(lines) + "\n")


def boxes(image):
    return list(
        Box.objects.filter(image=image)
        .order_by("left")
        .values_list(
            "label__name", "left", "top", "width", "height", "origin", "proposal_id", "reviewer__username"
        )
    )


def test_a_job_is_followed_through_in_progress_to_completed_and_its_output_imported(
    gt, job, buckets, sagemaker_stubber, reviewer
):
    counters = {
        "TotalLabeled": 2,
        "HumanLabeled": 2,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 0,
        "Unlabeled": 2,
    }
    sagemaker_stubber.add_response(
        "describe_labeling_job", describe_response(JOB, "InProgress", counters), {"LabelingJobName": JOB}
    )
    results.sync(job, now=LATER)
    job.refresh_from_db()
    assert (job.status, job.counters, job.imported_at) == ("InProgress", counters, None)
    assert claim_next(iteration=gt["iteration"], user=reviewer, now=LATER) is None
    assert Image.objects.get(pk=gt["images"]["a"].pk).lease_expires_at == LATER + timedelta(days=30)

    put_output(buckets, OUTPUT_LINES)
    done = {
        "TotalLabeled": 3,
        "HumanLabeled": 3,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 1,
        "Unlabeled": 0,
    }
    sagemaker_stubber.add_response(
        "describe_labeling_job",
        describe_response(JOB, "Completed", done, LabelingJobOutput={"OutputDatasetS3Uri": OUTPUT}),
        {"LabelingJobName": JOB},
    )
    results.sync(job, now=LATER)

    job.refresh_from_db()
    images, proposals = gt["images"], gt["proposals"]
    user = f"gt-{JOB}"
    assert (job.status, job.output_manifest_uri, job.imported_at) == ("Completed", OUTPUT, LATER)
    assert job.report == {
        "lines": 4,
        "imported": 3,
        "unchanged": 0,
        "errors": [],
        "failed": [["s3://my-bucket/v2/e.jpg", "ClientError: Access Denied reading s3://my-bucket/v2/e.jpg"]],
    }
    assert boxes(images["a"]) == [
        ("aws-logo", 12.0, 22.0, 98.0, 50.0, "adjusted", proposals["a1"].pk, user),
        ("smile-logo", 700.0, 500.0, 40.0, 40.0, "added", None, user),
    ]
    assert Box.objects.get(image=images["a"], origin="adjusted").iou == pytest.approx(4802 / 5098)
    assert boxes(images["b"]) == []
    assert boxes(images["d"]) == [
        ("aws-logo", 50.0, 50.0, 200.0, 100.0, "accepted", proposals["d1"].pk, user)
    ]
    assert Box.objects.get(image=images["d"]).iou == 1.0
    review = Review.objects.get(image=images["a"])
    assert review.reviewer.username == user and review.changed
    assert review.submitted_at == datetime(2026, 12, 3, 16, 42, 7, 123456, tzinfo=UTC)
    assert [d["verdict"] for d in review.decisions] == ["adjusted", "added", "rejected"]
    assert review.decisions[2]["proposal"] == proposals["a2"].pk
    assert not Review.objects.get(image=images["d"]).changed

    by_name = {image.name: image for image in Image.objects.filter(iteration=gt["iteration"])}
    assert [
        (by_name[n].status, by_name[n].reviewed_by and by_name[n].reviewed_by.username, by_name[n].no_objects)
        for n in ("a.jpg", "b.jpg", "d.jpg", "e.jpg")
    ] == [
        ("reviewed", user, False),
        ("reviewed", user, True),
        ("reviewed", user, False),
        ("pending", None, False),
    ]
    assert by_name["d.jpg"].reviewed_at == datetime(2026, 12, 3, 16, 40, tzinfo=UTC)
    assert not Image.objects.filter(leased_by__isnull=False).exists()
    assert GroundTruthItem.objects.get(image=images["e"]).failure_reason == (
        "ClientError: Access Denied reading s3://my-bucket/v2/e.jpg"
    )
    # The failed image is back in Loupe's queue.
    assert claim_next(iteration=gt["iteration"], user=reviewer, now=LATER) == images["e"]


def test_importing_the_same_output_again_changes_nothing(gt, job, buckets):
    first = results.import_output(job, lines=OUTPUT_LINES, now=LATER)
    before = (
        list(Box.objects.order_by("id").values_list("id", "origin", "left")),
        list(Review.objects.order_by("id").values_list("id", flat=True)),
        list(Image.objects.order_by("id").values_list("id", "version", "status")),
    )

    again = results.import_output(job, lines=OUTPUT_LINES, now=LATER + timedelta(hours=1))

    assert (first.imported, first.unchanged) == (3, 0)
    assert (again.imported, again.unchanged, len(again.failed)) == (0, 3, 1)
    after = (
        list(Box.objects.order_by("id").values_list("id", "origin", "left")),
        list(Review.objects.order_by("id").values_list("id", flat=True)),
        list(Image.objects.order_by("id").values_list("id", "version", "status")),
    )
    assert after == before


def test_a_failed_job_shows_its_reason_and_gives_the_images_back(
    gt, job, sagemaker_stubber, reviewer, client, owner
):
    reason = "ClientError: Could not read the label category file s3://out-bucket/loupe/labels.json"
    sagemaker_stubber.add_response(
        "describe_labeling_job",
        describe_response(JOB, "Failed", FailureReason=reason),
        {"LabelingJobName": JOB},
    )
    call_command("sync_groundtruth", "logos/v2")
    job.refresh_from_db()
    assert (job.status, job.failure_reason, job.imported_at) == ("Failed", reason, None)
    assert set(job.items.values_list("state", flat=True)) == {"unfinished"}
    assert not Image.objects.filter(leased_by__isnull=False).exists()
    assert claim_next(iteration=gt["iteration"], user=reviewer, now=LATER) is not None
    client.force_login(owner)
    page = client.get("/p/logos/i/v2/").content.decode()
    assert reason in page


def test_a_stopped_job_imports_its_partial_results_and_releases_the_rest(gt, job, buckets, sagemaker_stubber):
    put_output(buckets, OUTPUT_LINES[:1])
    sagemaker_stubber.add_response(
        "describe_labeling_job", describe_response(JOB, "Stopped"), {"LabelingJobName": JOB}
    )
    results.sync(job, now=LATER)

    job.refresh_from_db()
    assert (job.status, job.report["imported"]) == ("Stopped", 1)
    states = dict(job.items.values_list("image__name", "state"))
    assert states == {"a.jpg": "done", "b.jpg": "unfinished", "d.jpg": "unfinished", "e.jpg": "unfinished"}
    assert list(
        Image.objects.filter(iteration=gt["iteration"], status="pending")
        .order_by("position")
        .values_list("name", "leased_by")
    ) == [("b.jpg", None), ("d.jpg", None), ("e.jpg", None)]


def test_the_stop_button_stops_the_job(gt, job, sagemaker_stubber, client, owner):
    sagemaker_stubber.add_response("stop_labeling_job", {}, {"LabelingJobName": JOB})
    client.force_login(owner)
    response = client.post(f"/p/logos/i/v2/groundtruth/jobs/{job.pk}/stop")
    assert response.status_code == 302
    sagemaker_stubber.assert_no_pending_responses()
    job.refresh_from_db()
    assert job.status == "Stopping"


def test_the_iteration_page_shows_progress_and_only_owners_get_the_stop_button(
    gt, job, client, owner, reviewer
):
    GroundTruthJob.objects.filter(pk=job.pk).update(
        status="InProgress", counters={"TotalLabeled": 3, "Unlabeled": 1, "FailedNonRetryableError": 0}
    )
    from projects.models import Membership

    Membership.objects.create(project=gt["project"], user=reviewer, role="reviewer")
    client.force_login(owner)
    page = client.get("/p/logos/i/v2/").content.decode()
    assert JOB in page and "3 of 4 labeled" in page and "Stop job" in page
    client.force_login(reviewer)
    page = client.get("/p/logos/i/v2/").content.decode()
    assert "3 of 4 labeled" in page and "Stop job" not in page


def test_the_poll_task_queues_the_next_poll_while_the_job_runs(gt, job, sagemaker_stubber, settings):
    from django.utils import timezone

    from projects.groundtruth import tasks

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    sagemaker_stubber.add_response(
        "describe_labeling_job", describe_response(JOB, "InProgress"), {"LabelingJobName": JOB}
    )
    before = timezone.now()

    result = tasks.poll_groundtruth_job.call(job_id=job.pk)

    sagemaker_stubber.assert_no_pending_responses()
    assert result == {"status": "InProgress"}
    (queued,) = tasks.poll_groundtruth_job.get_backend().results
    assert queued.kwargs == {"job_id": job.pk}
    assert before + timedelta(seconds=300) <= queued.task.run_after <= timezone.now() + timedelta(seconds=300)


def test_the_poll_task_stops_polling_once_the_job_has_ended(gt, job, buckets, sagemaker_stubber, settings):
    from projects.groundtruth import tasks

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    put_output(buckets, OUTPUT_LINES)
    sagemaker_stubber.add_response(
        "describe_labeling_job",
        describe_response(JOB, "Completed", LabelingJobOutput={"OutputDatasetS3Uri": OUTPUT}),
        {"LabelingJobName": JOB},
    )

    assert tasks.poll_groundtruth_job.call(job_id=job.pk) == {"status": "Completed"}
    assert list(tasks.poll_groundtruth_job.get_backend().results) == []


def test_the_export_treats_ground_truth_results_like_loupe_reviews(gt, job):
    from projects.manifests.export import iter_manifest_lines

    results.import_output(job, lines=OUTPUT_LINES, now=LATER)

    lines = {
        json.loads(text)["source-ref"]: json.loads(text)
        for text in iter_manifest_lines(iteration=gt["iteration"])
    }
    a = lines["s3://my-bucket/v2/a.jpg"]
    assert a["bounding-box"]["annotations"] == [
        {"class_id": 0, "left": 12, "top": 22, "width": 98, "height": 50},
        {"class_id": 1, "left": 700, "top": 500, "width": 40, "height": 40},
    ]
    assert a["bounding-box-metadata"]["human-annotated"] == "yes"
    assert a["bounding-box-metadata"]["creation-date"] == "2026-12-03T16:42:07.123456"
    assert lines["s3://my-bucket/v2/b.jpg"]["bounding-box"]["annotations"] == []
    assert "s3://my-bucket/v2/e.jpg" not in lines


def test_owner_dispatches_from_the_iteration_page_with_a_dry_run_first(gt, buckets, client, owner):
    client.force_login(owner)
    form = {"workteam_arn": WORKTEAM_ARN, "role_arn": ROLE_ARN, "max_labels_per_job": "10", "dry_run": "on"}

    page = client.post("/p/logos/i/v2/groundtruth/dispatch", form, HTTP_HX_REQUEST="true").content.decode()

    assert "Dry run: 1 job(s) for 4 images; nothing was sent." in page
    assert "&quot;LabelingJobName&quot;: &quot;logos-v2-" in page
    assert not GroundTruthJob.objects.exists()


def test_a_reviewer_cannot_dispatch(gt, client, reviewer):
    from projects.models import Membership

    Membership.objects.create(project=gt["project"], user=reviewer, role="reviewer")
    client.force_login(reviewer)
    form = {"workteam_arn": WORKTEAM_ARN, "role_arn": ROLE_ARN, "max_labels_per_job": "10"}
    assert client.post("/p/logos/i/v2/groundtruth/dispatch", form).status_code in (403, 404)
    assert not GroundTruthJob.objects.exists()


def test_an_image_split_across_jobs_is_reviewed_once_every_job_has_labeled_it(gt, buckets, sagemaker_stubber):
    first, second = f"{JOB}-1", f"{JOB}-2"
    for name in (first, second):
        sagemaker_stubber.add_response("create_labeling_job", {"LabelingJobArn": job_arn(name)}, None)
    dispatch(
        DispatchRequest(
            iteration=gt["iteration"], workteam_arn=WORKTEAM_ARN, role_arn=ROLE_ARN, max_labels_per_job=1
        ),
        now=NOW,
    )
    jobs = {job.name: job for job in GroundTruthJob.objects.all()}
    a = gt["images"]["a"]

    def line(job, annotations, class_map):
        return adjusted("s3://my-bucket/v2/a.jpg", annotations, class_map, "unadjusted").replace(JOB, job)

    aws = line(first, [{"class_id": 0, "left": 10, "top": 21, "width": 100, "height": 50}], {"0": "aws-logo"})
    results.import_output(jobs[first], lines=[aws], now=LATER)
    a.refresh_from_db()
    assert (a.status, a.leased_by.username) == ("pending", f"gt-{first}")

    smile = line(
        second, [{"class_id": 0, "left": 300, "top": 200, "width": 64, "height": 64}], {"0": "smile-logo"}
    )
    results.import_output(jobs[second], lines=[smile], now=LATER)
    a.refresh_from_db()
    assert (a.status, a.leased_by, a.reviewed_by.username) == ("reviewed", None, f"gt-{second}")
    assert [(name, origin, user) for name, *_, origin, _, user in boxes(a)] == [
        ("aws-logo", "accepted", f"gt-{first}"),
        ("smile-logo", "accepted", f"gt-{second}"),
    ]


def test_check_the_jobs_now_polls_every_job_of_the_iteration(gt, job, sagemaker_stubber, client, owner):
    counters = {"TotalLabeled": 1, "HumanLabeled": 1, "FailedNonRetryableError": 0, "Unlabeled": 3}
    sagemaker_stubber.add_response(
        "describe_labeling_job", describe_response(JOB, "InProgress", counters), {"LabelingJobName": JOB}
    )
    client.force_login(owner)
    response = client.post("/p/logos/i/v2/groundtruth/sync")
    assert response.status_code == 302
    sagemaker_stubber.assert_no_pending_responses()
    page = client.get("/p/logos/i/v2/").content.decode()
    assert "1 of 4 labeled" in page and "In progress" in page
