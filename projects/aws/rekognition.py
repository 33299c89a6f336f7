"""Amazon Rekognition Custom Labels through boto3: the client, and calls that raise Loupe's errors.

Tests stub the client returned by client() with botocore's Stubber.
"""

import time
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
    WaiterError,
)

from projects.aws.errors import (
    CREDENTIAL_LOAD_ERRORS,
    NO_CREDENTIALS,
    attempts,
    credentials_message,
    error_parts,
    explain,
)

# Enough connections for the largest proposal run's threads, plus a few for model management.
MAX_POOL_CONNECTIONS = 36
# Calls botocore makes per request, the first one included (its own retries are the rest).
BOTOCORE_ATTEMPTS = 3
CONNECTION_ERRORS = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError)


class RekognitionError(Exception):
    """A Rekognition call for model management failed; the message says what to do."""


class DetectError(Exception):
    """DetectCustomLabels failed: `code` is AWS's error code, or NoCredentials / CredentialsError /
    ConnectionError / SetupError for failures before an answer came back. `attempts`: the calls
    botocore made for it (its own retries included), read from the response."""

    def __init__(self, code, message, attempts=1):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.attempts = attempts


@lru_cache(maxsize=8)
def client(region=None):
    # Adaptive mode: botocore's client-side rate limiter slows every thread of the process when
    # Rekognition throttles, and botocore makes up to BOTOCORE_ATTEMPTS calls per request (the
    # first and two retries). The backend's own retry with jitter sits on top for the throttles
    # that still get through; it counts botocore's calls from each answer's RetryAttempts, so its
    # max_attempts caps the calls per image across both layers.
    config = Config(
        retries={"mode": "adaptive", "total_max_attempts": BOTOCORE_ATTEMPTS},
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
        raise DetectError(*error_parts(error), attempts(error)) from error
    except NoCredentialsError as error:
        raise DetectError("NoCredentials", NO_CREDENTIALS) from error
    except CREDENTIAL_LOAD_ERRORS as error:
        raise DetectError("CredentialsError",
                          credentials_message(type(error).__name__, str(error))) from error
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


def wait_until_running(rekognition, *, project_arn, version_name, progress=None, delay=30, max_attempts=40,
                       sleep=None):
    """Wait for a started version to be RUNNING with botocore's ProjectVersionRunning waiter.

    The waiter is asked one attempt at a time so that progress(status, seconds waited) can report
    each status it sees; its acceptors (RUNNING: done, FAILED: failure) are botocore's own. Returns
    the final status; RekognitionError when the version fails, an answer is an error, or it is
    still not RUNNING after max_attempts polls (the waiter's defaults: 40 polls, 30 s apart).
    """
    sleep = sleep or time.sleep
    waiter = rekognition.get_waiter("project_version_running")
    status = ""
    for attempt in range(1, max_attempts + 1):
        try:
            waiter.wait(ProjectArn=project_arn, VersionNames=[version_name],
                        WaiterConfig={"Delay": delay, "MaxAttempts": 1})
            return "RUNNING"
        except WaiterError as error:
            response = error.last_response or {}
            if "Error" in response:
                raise RekognitionError(
                    explain(ClientError(response, "DescribeProjectVersions"), service="Rekognition")
                ) from error
            descriptions = response.get("ProjectVersionDescriptions") or [{}]
            status = descriptions[0].get("Status", "")
            if status == "FAILED":
                raise RekognitionError(
                    f"the model version failed to start: {descriptions[0].get('StatusMessage', '')}"
                ) from error
        except BotoCoreError as error:
            raise RekognitionError(explain(error, service="Rekognition")) from error
        if progress is not None:
            progress(status, (attempt - 1) * delay)
        if attempt < max_attempts:
            sleep(delay)
    raise RekognitionError(
        f"the model version is still {status or 'not running'} after {max_attempts * delay} s: "
        "refresh its status later"
    )
