"""Rekognition Custom Labels training calls through boto3: datasets and new project versions.

Every call takes the boto3 client (from projects.aws.rekognition.client, which tests stub with
botocore's Stubber) and raises RekognitionError with one line saying what went wrong.
"""

from botocore.exceptions import BotoCoreError, ClientError

from projects.aws.errors import error_parts, explain
from projects.aws.rekognition import RekognitionError

__all__ = ["RekognitionError", "DatasetGone", "project_name_from_arn", "project_datasets", "create_dataset",
           "describe_dataset", "delete_dataset", "dataset_entries", "create_project_version",
           "describe_project_version"]


class DatasetGone(RekognitionError):
    """DescribeDataset answered ResourceNotFoundException: the dataset does not exist (any more)."""


def _call(fn, **kwargs):
    try:
        return fn(**kwargs)
    except (BotoCoreError, ClientError) as error:
        raise RekognitionError(explain(error, service="Rekognition")) from error


def project_name_from_arn(project_arn):
    """arn:aws:rekognition:REGION:ACCOUNT:project/NAME/123 -> NAME."""
    _, sep, rest = project_arn.partition(":project/")
    return rest.split("/", 1)[0] if sep else ""


def project_datasets(project_arn, *, rekognition):
    """The project's datasets as DescribeProjects lists them: [{DatasetType, DatasetArn, Status, ...}]."""
    response = _call(rekognition.describe_projects, ProjectNames=[project_name_from_arn(project_arn)])
    for description in response.get("ProjectDescriptions", []):
        if description.get("ProjectArn") == project_arn:
            return list(description.get("Datasets", []))
    raise RekognitionError(
        f"Rekognition does not list project {project_arn}: check the ARN in the project settings"
    )


def create_dataset(project_arn, dataset_type, *, bucket, key, rekognition):
    """CreateDataset TRAIN or TEST from a Ground Truth manifest in S3; returns the dataset ARN."""
    response = _call(
        rekognition.create_dataset,
        ProjectArn=project_arn,
        DatasetType=dataset_type,
        DatasetSource={"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": key}}},
    )
    return response["DatasetArn"]


def describe_dataset(dataset_arn, *, rekognition):
    """DescribeDataset's DatasetDescription (Status, StatusMessage(Code), DatasetStats)."""
    try:
        response = rekognition.describe_dataset(DatasetArn=dataset_arn)
    except ClientError as error:
        if error_parts(error)[0] == "ResourceNotFoundException":
            raise DatasetGone(f"dataset {dataset_arn} does not exist") from error
        raise RekognitionError(explain(error, service="Rekognition")) from error
    except BotoCoreError as error:
        raise RekognitionError(explain(error, service="Rekognition")) from error
    return response["DatasetDescription"]


def delete_dataset(dataset_arn, *, rekognition):
    _call(rekognition.delete_dataset, DatasetArn=dataset_arn)


def dataset_entries(dataset_arn, *, rekognition, has_errors=None, page_size=None):
    """Every entry (a manifest line, as text) of a dataset, following ListDatasetEntries' pages.

    has_errors=True: only the lines Rekognition found errors in.
    """
    request = {"DatasetArn": dataset_arn}
    if has_errors is not None:
        request["HasErrors"] = has_errors
    if page_size is not None:
        request["PaginationConfig"] = {"PageSize": page_size}
    paginator = rekognition.get_paginator("list_dataset_entries")
    try:
        for page in paginator.paginate(**request):
            yield from page.get("DatasetEntries", [])
    except (BotoCoreError, ClientError) as error:
        raise RekognitionError(explain(error, service="Rekognition")) from error


def create_project_version(project_arn, version_name, *, output_bucket, output_prefix, rekognition):
    """CreateProjectVersion: train on the project's datasets; returns the new version's ARN."""
    response = _call(
        rekognition.create_project_version,
        ProjectArn=project_arn,
        VersionName=version_name,
        OutputConfig={"S3Bucket": output_bucket, "S3KeyPrefix": output_prefix},
    )
    return response["ProjectVersionArn"]


def describe_project_version(project_arn, version_name, *, rekognition):
    """The ProjectVersionDescription of one version, or RekognitionError when it is not listed."""
    response = _call(
        rekognition.describe_project_versions, ProjectArn=project_arn, VersionNames=[version_name]
    )
    descriptions = response.get("ProjectVersionDescriptions", [])
    if not descriptions:
        raise RekognitionError(
            f"Rekognition does not list version {version_name!r} of {project_arn}: it may have been deleted"
        )
    return descriptions[0]
