import json

import pytest
from django.core.management import CommandError, call_command

from projects.groundtruth import contract
from projects.groundtruth.dispatch import DispatchError, DispatchRequest, dispatch
from projects.models import GroundTruthItem, GroundTruthJob, Image
from reviewer.queue import claim_next
from tests.factories import make_user
from tests.projects.groundtruth.conftest import (
    BASE,
    JOB,
    NOW,
    ROLE_ARN,
    WORKTEAM_ARN,
    expected_request,
    job_arn,
)

pytestmark = pytest.mark.django_db


def request(gt, **fields):
    return DispatchRequest(iteration=gt["iteration"], workteam_arn=WORKTEAM_ARN, role_arn=ROLE_ARN, **fields)


def read(s3, uri):
    bucket, _, key = uri[5:].partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def prior(source, annotations, objects, class_map, job=JOB):
    return {
        "source-ref": source,
        "loupe-proposals": {
            "image_size": [{"width": 1024, "height": 768, "depth": 3}],
            "annotations": annotations,
        },
        "loupe-proposals-metadata": {
            "objects": objects,
            "class-map": class_map,
            "type": "groundtruth/object-detection",
            "human-annotated": "no",
            "creation-date": "2026-12-03T15:00:00.000000",
            "job-name": f"loupe/{job}",
        },
    }


def test_dispatch_writes_the_files_creates_the_job_and_leases_the_images(gt, buckets, sagemaker_stubber):
    sagemaker_stubber.add_response(
        "create_labeling_job", {"LabelingJobArn": job_arn(JOB)}, expected_request(JOB)
    )

    plan = dispatch(request(gt), now=NOW)

    sagemaker_stubber.assert_no_pending_responses()
    manifest = [json.loads(line) for line in read(buckets, f"{BASE}/{JOB}/input.manifest").splitlines()]
    assert manifest == [
        prior(
            "s3://my-bucket/v2/a.jpg",
            [
                {"class_id": 0, "left": 10, "top": 21, "width": 100, "height": 50},
                {"class_id": 1, "left": 300, "top": 200, "width": 64, "height": 64},
            ],
            [{"confidence": 0.915}, {"confidence": 0.55}],
            {"0": "aws-logo", "1": "smile-logo"},
        ),
        prior("s3://my-bucket/v2/b.jpg", [], [], {}),
        prior(
            "s3://my-bucket/v2/d.jpg",
            [{"class_id": 0, "left": 50, "top": 50, "width": 200, "height": 100}],
            [{"confidence": 0.8}],
            {"0": "aws-logo"},
        ),
        prior(
            "s3://my-bucket/v2/e.jpg",
            [{"class_id": 1, "left": 5, "top": 5, "width": 70, "height": 70}],
            [{"confidence": 0.99}],
            {"1": "smile-logo"},
        ),
    ]
    assert json.loads(read(buckets, f"{BASE}/{JOB}/labels.json")) == {
        "document-version": "2018-11-28",
        "labels": [{"label": "aws-logo"}, {"label": "smile-logo"}],
    }
    template = read(buckets, f"{BASE}/{JOB}/template.liquid.html")
    assert "<crowd-bounding-box" in template
    assert "{% for box in task.input.manifestLine.loupe-proposals.annotations %}" in template
    assert (
        "{% assign label = task.input.manifestLine.loupe-proposals-metadata.class-map[class_id] %}"
        in template
    )
    assert '<full-instructions header="Instructions">Box every logo.</full-instructions>' in template

    job = GroundTruthJob.objects.get()
    assert (job.name, job.batch, job.arn, job.status, job.labels) == (
        JOB,
        JOB,
        job_arn(JOB),
        "Initializing",
        ["aws-logo", "smile-logo"],
    )
    assert plan.created == [job]
    assert job.service_user.username == f"gt-{JOB}" and not job.service_user.is_active
    images = gt["images"]
    proposals = gt["proposals"]
    assert dict(job.items.values_list("image_id", "proposals")) == {
        images["a"].pk: [proposals["a1"].pk, proposals["a2"].pk],
        images["b"].pk: [],
        images["d"].pk: [proposals["d1"].pk],
        images["e"].pk: [proposals["e1"].pk],
    }
    leased = Image.objects.filter(leased_by=job.service_user).order_by("position")
    assert [image.name for image in leased] == ["a.jpg", "b.jpg", "d.jpg", "e.jpg"]


def test_a_dispatched_image_is_not_offered_to_a_loupe_reviewer(gt, buckets, sagemaker_stubber, reviewer):
    held = gt["images"]["d"]
    gt["project"].review_order = "file"
    gt["project"].save()
    # A Loupe reviewer holds a.jpg: it is not dispatched.
    assert claim_next(iteration=gt["iteration"], user=reviewer, now=NOW) == gt["images"]["a"]
    sagemaker_stubber.add_response("create_labeling_job", {"LabelingJobArn": job_arn(JOB)}, None)

    dispatch(request(gt), now=NOW)

    job = GroundTruthJob.objects.get()
    assert held.pk in set(job.items.values_list("image_id", flat=True))
    assert gt["images"]["a"].pk not in set(job.items.values_list("image_id", flat=True))
    other = make_user("other-reviewer")
    assert claim_next(iteration=gt["iteration"], user=other, now=NOW) is None


def test_labels_above_the_per_job_limit_are_split_into_several_jobs(gt, buckets, sagemaker_stubber):
    first, second = f"{JOB[:-15]}-20261203150000-1", f"{JOB[:-15]}-20261203150000-2"
    for name, labels in ((first, "aws-logo"), (second, "smile-logo")):
        sagemaker_stubber.add_response(
            "create_labeling_job", {"LabelingJobArn": job_arn(name)}, expected_request(name, labels)
        )

    dispatch(request(gt, max_labels_per_job=1), now=NOW)

    sagemaker_stubber.assert_no_pending_responses()
    assert json.loads(read(buckets, f"{BASE}/{second}/labels.json"))["labels"] == [{"label": "smile-logo"}]
    second_manifest = [
        json.loads(line) for line in read(buckets, f"{BASE}/{second}/input.manifest").splitlines()
    ]
    assert [line["loupe-proposals"]["annotations"] for line in second_manifest] == [
        [{"class_id": 0, "left": 300, "top": 200, "width": 64, "height": 64}],
        [],
        [],
        [{"class_id": 0, "left": 5, "top": 5, "width": 70, "height": 70}],
    ]
    assert second_manifest[0]["loupe-proposals-metadata"]["class-map"] == {"0": "smile-logo"}
    jobs = GroundTruthJob.objects.order_by("name")
    assert [(job.name, job.batch, job.labels) for job in jobs] == [
        (first, JOB, ["aws-logo"]),
        (second, JOB, ["smile-logo"]),
    ]
    # Both jobs' images are leased to the batch's first job.
    assert set(
        Image.objects.filter(leased_by__isnull=False).values_list("leased_by__username", flat=True)
    ) == {f"gt-{first}"}
    assert GroundTruthItem.objects.count() == 8


def test_a_region_without_the_builtin_lambdas_is_refused_before_any_aws_call(gt, sagemaker_stubber):
    gt["project"].region = "sa-east-1"
    gt["project"].save()
    with pytest.raises(DispatchError) as refused:
        dispatch(request(gt), now=NOW)
    assert str(refused.value).startswith(
        "Ground Truth's built-in bounding-box adjustment lambdas are not available in region 'sa-east-1': "
        "use one of ap-northeast-1, ap-northeast-2, ap-south-1,"
    )
    assert not GroundTruthJob.objects.exists()


def test_the_lambdas_of_each_region(gt):
    assert contract.lambda_arns("eu-west-2") == (
        "arn:aws:lambda:eu-west-2:487402164563:function:PRE-AdjustmentBoundingBox",
        "arn:aws:lambda:eu-west-2:487402164563:function:ACS-AdjustmentBoundingBox",
    )
    assert contract.lambda_arns("ap-southeast-2")[0] == (
        "arn:aws:lambda:ap-southeast-2:454466003867:function:PRE-AdjustmentBoundingBox"
    )


def test_a_bucket_without_the_cors_rule_is_refused_with_the_rule_to_add(gt, s3, sagemaker_stubber):
    s3.create_bucket(Bucket="my-bucket")
    s3.create_bucket(Bucket="out-bucket")
    with pytest.raises(DispatchError) as refused:
        dispatch(request(gt), now=NOW)
    assert str(refused.value) == (
        "bucket(s) my-bucket have no CORS rule that lets Ground Truth's worker UI fetch the images (the "
        "labeling tasks would fail). Add this CORS configuration to each:\n"
        + json.dumps(
            {
                "CORSRules": [
                    {
                        "AllowedHeaders": [],
                        "AllowedMethods": ["GET"],
                        "AllowedOrigins": ["*"],
                        "ExposeHeaders": ["Access-Control-Allow-Origin"],
                    }
                ]
            },
            indent=2,
        )
    )
    assert s3.list_objects_v2(Bucket="out-bucket").get("KeyCount") == 0
    assert not GroundTruthJob.objects.exists()


def test_dry_run_prints_the_files_and_request_and_sends_nothing(gt, s3, sagemaker_stubber, capsys):
    s3.create_bucket(Bucket="my-bucket")
    s3.create_bucket(Bucket="out-bucket")

    call_command(
        "dispatch_groundtruth",
        "logos/v2",
        "--workteam-arn",
        WORKTEAM_ARN,
        "--role-arn",
        ROLE_ARN,
        "--dry-run",
    )

    out = capsys.readouterr().out
    assert "dry run: 1 job(s) for 4 images; nothing sent to AWS" in out
    assert f"-- {BASE}/{JOB[:-14]}" in out
    assert (
        '"PreHumanTaskLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:PRE-AdjustmentBoundingBox"'
        in out
    )
    assert '"AllowedOrigins": [\n        "*"\n      ]' in out  # the CORS rule to add
    assert s3.list_objects_v2(Bucket="out-bucket").get("KeyCount") == 0
    assert not GroundTruthJob.objects.exists()
    assert not Image.objects.filter(leased_by__isnull=False).exists()


def test_names_arns_and_limits_are_checked_before_aws(gt, sagemaker_stubber):
    with pytest.raises(DispatchError, match="is not an IAM role ARN"):
        dispatch(
            DispatchRequest(iteration=gt["iteration"], workteam_arn=WORKTEAM_ARN, role_arn="role"), now=NOW
        )
    with pytest.raises(DispatchError, match="is in eu-west-1, the project in us-east-1"):
        dispatch(
            DispatchRequest(
                iteration=gt["iteration"],
                role_arn=ROLE_ARN,
                workteam_arn=WORKTEAM_ARN.replace("us-east-1", "eu-west-1"),
            ),
            now=NOW,
        )
    with pytest.raises(DispatchError, match="--max-labels-per-job must be 1..10"):
        dispatch(request(gt, max_labels_per_job=11), now=NOW)
    Image.objects.filter(pk=gt["images"]["b"].pk).update(width=12000, height=9000)
    with pytest.raises(
        DispatchError, match=r"s3://my-bucket/v2/b.jpg: 12000x9000 \(at most 100 megapixels\)"
    ):
        dispatch(request(gt), now=NOW)


def test_job_and_attribute_name_rules():
    contract.check_job_name("logos-v2-20261203150000")
    for bad in ("-logos", "logos-", "logos_v2", "a" * 64, ""):
        with pytest.raises(contract.ContractError):
            contract.check_job_name(bad)
    for bad in ("boxes-metadata", "boxes-ref", "loupe-proposals", "a" * 128):
        with pytest.raises(contract.ContractError):
            contract.check_attribute_name(bad, prior="loupe-proposals")


def test_the_command_refuses_a_missing_iteration():
    with pytest.raises(CommandError, match="nope"):
        call_command(
            "dispatch_groundtruth", "nope/v2", "--workteam-arn", WORKTEAM_ARN, "--role-arn", ROLE_ARN
        )


def test_the_command_dispatches_and_starts_following_the_job(
    gt, buckets, sagemaker_stubber, capsys, monkeypatch
):
    from django.utils import timezone

    from tests.projects.groundtruth.conftest import describe_response

    monkeypatch.setattr(timezone, "now", lambda: NOW)
    sagemaker_stubber.add_response(
        "create_labeling_job", {"LabelingJobArn": job_arn(JOB)}, expected_request(JOB)
    )
    # The test settings run tasks at once: the first poll follows the dispatch.
    sagemaker_stubber.add_response(
        "describe_labeling_job", describe_response(JOB, "Initializing"), {"LabelingJobName": JOB}
    )

    call_command("dispatch_groundtruth", "logos/v2", "--workteam-arn", WORKTEAM_ARN, "--role-arn", ROLE_ARN)

    sagemaker_stubber.assert_no_pending_responses()
    out = capsys.readouterr().out
    assert f"created {JOB} (aws-logo, smile-logo): {job_arn(JOB)}" in out
    assert "4 images leased to the job(s) until their results are imported." in out
    assert GroundTruthJob.objects.get().checked_at == NOW


def test_a_job_aws_refuses_is_recorded_as_failed_and_its_images_go_back(
    gt, buckets, sagemaker_stubber, reviewer
):
    sagemaker_stubber.add_client_error(
        "create_labeling_job",
        "AccessDeniedException",
        "User is not authorized to perform sagemaker:CreateLabelingJob",
    )
    with pytest.raises(DispatchError) as refused:
        dispatch(request(gt), now=NOW)
    assert str(refused.value) == (
        "CreateLabelingJob: access denied by SageMaker (User is not authorized to perform "
        "sagemaker:CreateLabelingJob): check the credentials' IAM policy"
    )
    job = GroundTruthJob.objects.get()
    assert (job.status, job.arn) == ("Failed", "")
    assert set(job.items.values_list("state", flat=True)) == {"unfinished"}
    assert not Image.objects.filter(leased_by__isnull=False).exists()


def test_a_second_dispatch_in_the_same_second_is_refused_with_the_taken_name(gt, buckets, sagemaker_stubber):
    sagemaker_stubber.add_response("create_labeling_job", {"LabelingJobArn": job_arn(JOB)}, None)
    dispatch(request(gt), now=NOW)
    Image.objects.update(leased_by=None, lease_expires_at=None)
    with pytest.raises(DispatchError, match=f"a labeling job named {JOB} already exists"):
        dispatch(request(gt), now=NOW)


def test_the_admin_lists_the_jobs(gt, buckets, sagemaker_stubber, client):
    sagemaker_stubber.add_response("create_labeling_job", {"LabelingJobArn": job_arn(JOB)}, None)
    dispatch(request(gt), now=NOW)
    client.force_login(make_user("admin", superuser=True))
    page = client.get("/admin/projects/groundtruthjob/")
    assert page.status_code == 200 and JOB in page.content.decode()
