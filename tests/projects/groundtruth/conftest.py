from datetime import UTC, datetime

import pytest

from projects.groundtruth import contract
from projects.models import Image
from tests.factories import (
    make_image,
    make_iteration,
    make_model_version,
    make_project,
    make_proposal,
    thresholds,
)

NOW = datetime(2026, 12, 3, 15, 0, 0, tzinfo=UTC)
JOB = "logos-v2-20261203150000"
ROLE_ARN = "arn:aws:iam::123456789012:role/GroundTruthLabeling"
WORKTEAM_ARN = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/logo-team"
PRE_LAMBDA = "arn:aws:lambda:us-east-1:432418664414:function:PRE-AdjustmentBoundingBox"
ACS_LAMBDA = "arn:aws:lambda:us-east-1:432418664414:function:ACS-AdjustmentBoundingBox"
BASE = "s3://out-bucket/loupe/groundtruth"


def job_arn(name):
    return f"arn:aws:sagemaker:us-east-1:123456789012:labeling-job/{name}"


def expected_request(name, labels_title="aws-logo, smile-logo"):
    return {
        "LabelingJobName": name,
        "LabelAttributeName": name,
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": f"{BASE}/{name}/input.manifest"}}},
        "OutputConfig": {"S3OutputPath": f"{BASE}/output/"},
        "RoleArn": ROLE_ARN,
        "LabelCategoryConfigS3Uri": f"{BASE}/{name}/labels.json",
        "HumanTaskConfig": {
            "WorkteamArn": WORKTEAM_ARN,
            "UiConfig": {"UiTemplateS3Uri": f"{BASE}/{name}/template.liquid.html"},
            "PreHumanTaskLambdaArn": PRE_LAMBDA,
            "TaskTitle": f"Adjust boxes: {labels_title}",
            "TaskDescription": "Loupe logos/v2: fix the proposed boxes, add missing ones, delete wrong ones",
            "NumberOfHumanWorkersPerDataObject": 1,
            "TaskTimeLimitInSeconds": 600,
            "MaxConcurrentTaskCount": 1000,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": ACS_LAMBDA},
        },
    }


def describe_response(name, status, counters=None, **extra):
    request = expected_request(name)
    return {
        "LabelingJobStatus": status,
        "LabelCounters": counters
        or {
            "TotalLabeled": 0,
            "HumanLabeled": 0,
            "MachineLabeled": 0,
            "FailedNonRetryableError": 0,
            "Unlabeled": 4,
        },
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
        "JobReferenceCode": "abc123",
        "LabelingJobName": name,
        "LabelingJobArn": job_arn(name),
        "LabelAttributeName": name,
        "InputConfig": request["InputConfig"],
        "OutputConfig": request["OutputConfig"],
        "RoleArn": ROLE_ARN,
        "HumanTaskConfig": request["HumanTaskConfig"],
        **extra,
    }


@pytest.fixture
def gt(owner):
    """logos/v2: four images awaiting review (a: two proposals above threshold and one below, b: none,
    d: one, e: one) and c, already reviewed; the images in my-bucket, output to out-bucket."""
    project = make_project(
        "logos",
        owner=owner,
        region="us-east-1",
        image_bucket="my-bucket",
        output_location="s3://out-bucket/loupe/",
        labeling_instructions="Box every logo.",
    )
    model = make_model_version(project, "v1")
    model.thresholds = thresholds(project, {"aws-logo": 60, "smile-logo": 50})
    model.save()
    v2 = make_iteration(project, "v2", shown_model=model)
    images = {}
    for position, name in enumerate("abcde"):
        status = Image.Status.REVIEWED if name == "c" else Image.Status.PENDING
        images[name] = make_image(
            v2, source=f"s3://my-bucket/v2/{name}.jpg", position=position, status=status
        )
    proposals = {
        "a1": make_proposal(
            images["a"], "aws-logo", (10.4, 20.6, 100, 50), confidence=91.5, model_version=model
        ),
        "a2": make_proposal(
            images["a"], "smile-logo", (300, 200, 64, 64), confidence=55.0, model_version=model
        ),
        "a3": make_proposal(
            images["a"], "aws-logo", (600, 400, 50, 50), confidence=40.0, model_version=model
        ),
        "d1": make_proposal(
            images["d"], "aws-logo", (50, 50, 200, 100), confidence=80.0, model_version=model
        ),
        "e1": make_proposal(images["e"], "smile-logo", (5, 5, 70, 70), confidence=99.0, model_version=model),
    }
    return {"project": project, "iteration": v2, "model": model, "images": images, "proposals": proposals}


@pytest.fixture
def buckets(s3):
    """my-bucket (the images, with the CORS rule workers need) and out-bucket (the output location)."""
    s3.create_bucket(Bucket="my-bucket")
    s3.create_bucket(Bucket="out-bucket")
    s3.put_bucket_cors(Bucket="my-bucket", CORSConfiguration={"CORSRules": [contract.CORS_RULE]})
    return s3
