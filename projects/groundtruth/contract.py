"""Ground Truth's rules for bounding-box adjustment jobs (docs/groundtruth.md names the AWS page of
each). Plain Python: no Django, no boto3."""

import re

# The account of the built-in PRE-/ACS-AdjustmentBoundingBox lambdas in each region (HumanTaskConfig).
LAMBDA_ACCOUNTS = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}

JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
ATTRIBUTE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
MAX_ATTRIBUTE_NAME = 127

MAX_OBJECTS_PER_JOB = 100_000
MAX_ATTRIBUTE_CHARS = 20_000
MAX_IMAGE_BYTES = 40 * 1024 * 1024
MAX_IMAGE_PIXELS = 100_000_000
# crowd-bounding-box shows at most 10 labels (the API would take 50).
MAX_LABELS_PER_JOB = 10
MAX_LABELS_API = 50

LABEL_CATEGORY_VERSION = "2018-11-28"

# The rule Ground Truth's worker UI needs on the image bucket to fetch the images.
CORS_RULE = {
    "AllowedHeaders": [],
    "AllowedMethods": ["GET"],
    "AllowedOrigins": ["*"],
    "ExposeHeaders": ["Access-Control-Allow-Origin"],
}

# DescribeLabelingJob's LabelingJobStatus values.
INITIALIZING, IN_PROGRESS, COMPLETED, FAILED, STOPPING, STOPPED = (
    "Initializing", "InProgress", "Completed", "Failed", "Stopping", "Stopped")
ENDED = (COMPLETED, FAILED, STOPPED)


class ContractError(ValueError):
    """A request Ground Truth would refuse; the message says what to change."""


def lambda_arns(region):
    """(PreHumanTaskLambdaArn, AnnotationConsolidationLambdaArn) of box adjustment in the region."""
    account = LAMBDA_ACCOUNTS.get(region)
    if account is None:
        raise ContractError(
            f"Ground Truth's built-in bounding-box adjustment lambdas are not available in region "
            f"{region!r}: use one of {', '.join(sorted(LAMBDA_ACCOUNTS))} (the project's region)"
        )
    prefix = f"arn:aws:lambda:{region}:{account}:function:"
    return prefix + "PRE-AdjustmentBoundingBox", prefix + "ACS-AdjustmentBoundingBox"


def check_job_name(name):
    if not JOB_NAME.match(name or ""):
        raise ContractError(
            f"labeling job name {name!r} is not valid for Ground Truth: 1-63 letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )


def check_attribute_name(name, *, prior):
    if len(name) > MAX_ATTRIBUTE_NAME or not ATTRIBUTE_NAME.match(name):
        raise ContractError(
            f"label attribute name {name!r} is not valid: at most {MAX_ATTRIBUTE_NAME} letters, "
            "digits and hyphens, starting and ending with a letter or digit"
        )
    if name.endswith("-ref") or name.endswith("-metadata"):
        raise ContractError(f"label attribute name {name!r} must not end with -ref or -metadata")
    if name == prior:
        raise ContractError(f"label attribute name {name!r} must differ from the prior attribute {prior!r}")


def split_labels(names, per_job):
    """The label names in groups of at most per_job (each group is one labeling job)."""
    if not 1 <= per_job <= MAX_LABELS_PER_JOB:
        raise ContractError(
            f"--max-labels-per-job must be 1..{MAX_LABELS_PER_JOB}: crowd-bounding-box shows at most "
            f"{MAX_LABELS_PER_JOB} labels"
        )
    names = list(names)
    return [names[start:start + per_job] for start in range(0, len(names), per_job)]


def cors_allows_workers(rules):
    """Whether some CORS rule lets the worker UI GET the images from any origin."""
    for rule in rules:
        methods = {method.upper() for method in rule.get("AllowedMethods", [])}
        origins = rule.get("AllowedOrigins", [])
        if "GET" in methods and ("*" in origins or any("sagemaker.aws" in origin for origin in origins)):
            return True
    return False


def label_category_config(names):
    return {"document-version": LABEL_CATEGORY_VERSION, "labels": [{"label": name} for name in names]}
