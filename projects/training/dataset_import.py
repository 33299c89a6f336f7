"""Bringing an existing Rekognition Custom Labels dataset into an iteration as reviewed truth.

ListDatasetEntries hands back the dataset's manifest lines (paginated); each one goes through the
manifest importer (projects.manifests.importing) as it arrives, so a team that labeled v1 in the
RCL console starts in Loupe with those labels. Importing the same dataset again changes nothing.
"""

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
    return import_manifest(iteration=iteration, lines=entries, create_labels=create_labels)
