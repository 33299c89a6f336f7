"""The one place Loupe talks to S3. Tests fake S3 with moto at this boundary."""

from dataclasses import dataclass
from functools import lru_cache

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from projects.aws.errors import explain


class S3Error(Exception):
    """An S3 failure with a message a person can act on."""


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    def __str__(self):
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_uri(uri):
    if not uri.startswith("s3://"):
        raise S3Error(f"{uri!r} is not an S3 address; expected s3://bucket/key")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise S3Error(f"{uri!r} names no bucket; expected s3://bucket/key")
    return S3Uri(bucket, key)


@lru_cache(maxsize=8)
def client(region=None):
    # Adaptive retries back off on throttling; s3v4 signing is what presigned URLs need.
    config = Config(
        signature_version="s3v4",
        retries={"mode": "adaptive", "max_attempts": 8},
        max_pool_connections=32,
    )
    # A session of its own: the default session would keep the first credentials it ever resolved.
    return boto3.session.Session().client("s3", region_name=region, config=config)


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (BotoCoreError, ClientError) as error:
        raise S3Error(explain(error, service="S3")) from error


def iter_objects(bucket, prefix, *, region=None):
    """Yield (key, size) for every object under prefix, following pagination."""
    paginator = client(region).get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=bucket, Prefix=prefix)
    try:
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"], item["Size"]
    except (BotoCoreError, ClientError) as error:
        raise S3Error(explain(error, service="S3")) from error


def read_range(bucket, key, length, *, region=None):
    """The first `length` bytes of an object (a ranged GET, not a download)."""
    response = _call(
        client(region).get_object, Bucket=bucket, Key=key, Range=f"bytes=0-{length - 1}"
    )
    return response["Body"].read()


def read_object(bucket, key, *, region=None):
    return _call(client(region).get_object, Bucket=bucket, Key=key)["Body"].read()


def open_object(bucket, key, *, region=None):
    """A streaming body for a whole object."""
    return _call(client(region).get_object, Bucket=bucket, Key=key)["Body"]


def put_object(bucket, key, body, *, content_type="application/octet-stream", region=None):
    _call(client(region).put_object, Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def upload_fileobj(fileobj, bucket, key, *, content_type="application/octet-stream", region=None):
    """Multipart upload of a file-like object of any size."""
    _call(
        client(region).upload_fileobj, fileobj, bucket, key,
        ExtraArgs={"ContentType": content_type},
    )


def delete_object(bucket, key, *, region=None):
    _call(client(region).delete_object, Bucket=bucket, Key=key)


def bucket_owner(bucket, *, region=None):
    """The canonical ID of the bucket's owner, or '' when S3 will not say."""
    try:
        response = client(region).get_bucket_acl(Bucket=bucket)
    except (BotoCoreError, ClientError):
        return ""
    return response.get("Owner", {}).get("ID", "")


def bucket_region(bucket, *, region=None):
    """The bucket's region, or '' when S3 will not say (no permission, no such bucket)."""
    try:
        response = client(region).get_bucket_location(Bucket=bucket)
    except (BotoCoreError, ClientError):
        return ""
    # Buckets in us-east-1 have no location constraint; "EU" is the old name of eu-west-1.
    location = response.get("LocationConstraint") or "us-east-1"
    return "eu-west-1" if location == "EU" else location


def presigned_url(bucket, key, *, expires=900, region=None):
    return _call(
        client(region).generate_presigned_url,
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires,
    )


def bucket_cors_rules(bucket, *, region=None):
    """The bucket's CORS rules (GetBucketCors' CORSRules); [] when it has none."""
    try:
        response = client(region).get_bucket_cors(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchCORSConfiguration":
            return []
        raise S3Error(explain(error, service="S3")) from error
    except BotoCoreError as error:
        raise S3Error(explain(error, service="S3")) from error
    return list(response.get("CORSRules", []))
