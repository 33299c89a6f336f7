"""SageMaker Ground Truth labeling jobs through boto3: create, describe, stop.

Every call takes the boto3 client from client() (which tests stub with botocore's Stubber) and
raises SageMakerError with one line saying what went wrong. moto implements no Ground Truth
operation, so nothing here is faked below the client.
"""

from functools import lru_cache

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from projects.aws.errors import error_parts, explain

__all__ = ["SageMakerError", "JobNotFound", "client", "create_labeling_job", "describe_labeling_job",
           "stop_labeling_job"]


class SageMakerError(Exception):
    """A SageMaker call failed; the message says what to do."""


class JobNotFound(SageMakerError):
    """DescribeLabelingJob answered ResourceNotFound: the job does not exist in this region."""


@lru_cache(maxsize=8)
def client(region=None):
    config = Config(retries={"mode": "adaptive", "max_attempts": 8})
    return boto3.session.Session().client("sagemaker", region_name=region, config=config)


def _call(fn, **kwargs):
    try:
        return fn(**kwargs)
    except ClientError as error:
        code, message = error_parts(error)
        if code in ("ResourceNotFound", "ResourceNotFoundException"):
            raise JobNotFound(f"SageMaker does not know labeling job ({message})") from error
        if code == "ResourceInUse":
            raise SageMakerError(f"a labeling job of that name already exists ({message})") from error
        raise SageMakerError(explain(error, service="SageMaker")) from error
    except BotoCoreError as error:
        raise SageMakerError(explain(error, service="SageMaker")) from error


def create_labeling_job(request, *, sagemaker):
    """CreateLabelingJob with the request as built by the caller; returns the job's ARN."""
    return _call(sagemaker.create_labeling_job, **request)["LabelingJobArn"]


def describe_labeling_job(name, *, sagemaker):
    """DescribeLabelingJob's answer: LabelingJobStatus, LabelCounters, FailureReason,
    LabelingJobOutput (OutputDatasetS3Uri), ..."""
    return _call(sagemaker.describe_labeling_job, LabelingJobName=name)


def stop_labeling_job(name, *, sagemaker):
    _call(sagemaker.stop_labeling_job, LabelingJobName=name)
