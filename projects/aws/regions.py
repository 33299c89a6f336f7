"""Which AWS region a resource lives in, and one message when it is not the project's region.

Rekognition reads images only from a bucket in its own region and answers for a project only in
the project's region: a mismatch fails every call, so it is checked once (settings, S3 import, the
start of a proposal run) instead of failing image by image. See docs/rekognition-rules.md.
"""


def arn_region(arn):
    """arn:aws:rekognition:REGION:ACCOUNT:... -> REGION ('' when arn is not an ARN)."""
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" else ""


def arn_mismatch(arn, region):
    """Why a Rekognition ARN cannot serve a project in `region`, or None."""
    found = arn_region(arn)
    if not found or found == region:
        return None
    return (
        f"the Rekognition ARN is in {found} but the project's region is {region}: Rekognition answers "
        f"for a project only in its own region; set the project's region to {found}"
    )


def bucket_mismatch(bucket, found, region):
    """Why images in `bucket` (in region `found`, '' if unknown) cannot serve `region`, or None."""
    if not found or found == region:
        return None
    return (
        f"bucket {bucket} is in {found} but the project's region is {region}: Rekognition reads images "
        f"only from a bucket in its own region; copy the images to a bucket in {region} or set the "
        f"project's region to {found}"
    )
