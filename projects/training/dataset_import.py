"""Bringing an existing Rekognition Custom Labels dataset into an iteration as reviewed truth.

ListDatasetEntries hands back the dataset's manifest lines (paginated); each one goes through the
manifest importer (projects.manifests.importing) as it arrives, so a team that labeled v1 in the
RCL console starts in Loupe with those labels. Importing the same dataset again changes nothing.

RCL's entries date their labels the AWS way (2021-06-22T10:11:18.006Z); each creation-date is
rewritten in Ground Truth's UTC style, which the manifest importer reads, before the line goes in.
"""

import json
from datetime import UTC, datetime

from projects.aws import rekognition as aws
from projects.aws import rekognition_training as rk
from projects.aws.rekognition import RekognitionError
from projects.manifests.importing import import_manifest

__all__ = ["RekognitionError", "import_rekognition_dataset", "region_from_arn"]


def region_from_arn(arn):
    """arn:aws:rekognition:REGION:ACCOUNT:... -> REGION ('' when it is not an ARN)."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" else ""


def import_rekognition_dataset(*, iteration, dataset_arn, create_labels=False, rekognition=None,
                               page_size=None):
    """Import every entry of the dataset; returns the ManifestImportReport.

    Raises RekognitionError when Rekognition cannot be read; the lines imported before that stay
    (importing again is safe).
    """
    if not region_from_arn(dataset_arn) or "/dataset/" not in dataset_arn:
        raise RekognitionError(
            f"{dataset_arn!r} is not a Rekognition dataset ARN "
            "(arn:aws:rekognition:REGION:ACCOUNT:project/NAME/dataset/train/123)"
        )
    rekognition = rekognition or aws.client(region_from_arn(dataset_arn))
    entries = rk.dataset_entries(dataset_arn, rekognition=rekognition, page_size=page_size)
    lines = (gt_dates(entry) for entry in entries)
    return import_manifest(iteration=iteration, lines=lines, create_labels=create_labels)


def gt_dates(text):
    """The line with every metadata creation-date in UTC YYYY-MM-DDTHH:MM:SS.ffffff; a line that
    is not JSON, or a date that is not ISO 8601, is left for the importer to report."""
    try:
        obj = json.loads(text)
    except ValueError:
        return text
    if not isinstance(obj, dict):
        return text
    changed = False
    for key, metadata in obj.items():
        if key.endswith("-metadata") and isinstance(metadata, dict) and isinstance(
                metadata.get("creation-date"), str):
            date = _utc(metadata["creation-date"])
            if date is not None and date != metadata["creation-date"]:
                metadata["creation-date"] = date
                changed = True
    return json.dumps(obj) if changed else text


def _utc(text):
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")
