"""Reading an image's bytes wherever it lives (Loupe's storage or S3)."""

from django.core.files.storage import default_storage

from projects.aws import s3


def read_image_bytes(image):
    if image.in_s3:
        location = s3.parse_s3_uri(image.source)
        return s3.read_object(location.bucket, location.key, region=image.iteration.project.region or None)
    with default_storage.open(image.source, "rb") as handle:
        return handle.read()
