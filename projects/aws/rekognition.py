"""Amazon Rekognition Custom Labels through boto3: the client, and calls that raise Loupe's errors.

Tests stub the client returned by client() with botocore's Stubber.
"""

from functools import lru_cache

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from projects.aws.errors import NO_CREDENTIALS, error_parts, explain

# Enough connections for the largest proposal run's threads, plus a few for model management.
MAX_POOL_CONNECTIONS = 36
CONNECTION_ERRORS = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError)


class RekognitionError(Exception):
    """A Rekognition call for model management failed; the message says what to do."""


class DetectError(Exception):
    """DetectCustomLabels failed: `code` is AWS's error code, or NoCredentials / ConnectionError /
    SetupError for failures before an answer came back."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@lru_cache(maxsize=8)
def client(region=None):
    # Adaptive mode rate-limits the whole process when Rekognition throttles; the backend's own
    # bounded retry with jitter sits on top for the throttles that still get through. botocore
    # retries only once itself, so the two layers multiply to at most 2 x 6 calls per image.
    config = Config(
        retries={"mode": "adaptive", "max_attempts": 2},
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )
    # A session of its own: the default session would keep the first credentials it ever resolved.
    return boto3.session.Session().client("rekognition", region_name=region, config=config)


def client_or_error(region=None):
    """client(), with a failure to build one (bad region, broken profile) as a DetectError."""
    try:
        return client(region)
    except BotoCoreError as error:
        raise DetectError("SetupError", f"cannot set up the Rekognition client: {error}") from error


def detect_custom_labels(rekognition, **request):
    """One DetectCustomLabels call; every failure is a DetectError."""
    try:
        return rekognition.detect_custom_labels(**request)
    except ClientError as error:
        raise DetectError(*error_parts(error)) from error
    except NoCredentialsError as error:
        raise DetectError("NoCredentials", NO_CREDENTIALS) from error
    except CONNECTION_ERRORS as error:
        raise DetectError("ConnectionError", str(error)) from error


def call(fn, **kwargs):
    """A model-management call; failures become a RekognitionError saying what to do."""
    try:
        return fn(**kwargs)
    except (BotoCoreError, ClientError) as error:
        raise RekognitionError(explain(error, service="Rekognition")) from error


def describe_project_versions(project_arn, *, rekognition):
    """Every version of a Rekognition project, following pagination."""
    paginator = rekognition.get_paginator("describe_project_versions")
    try:
        for page in paginator.paginate(ProjectArn=project_arn):
            yield from page.get("ProjectVersionDescriptions", [])
    except (BotoCoreError, ClientError) as error:
        raise RekognitionError(explain(error, service="Rekognition")) from error
