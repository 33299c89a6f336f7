"""The backend that runs a model version, chosen by its kind, never by dotted paths in settings."""

from projects.detections import ModelNotReady
from projects.models import ModelVersion
from projects.proposals.rekognition import RekognitionBackend


def backend_for(model_version, **options):
    """The backend that runs this model version; options go to the backend (client, sleep...)."""
    if model_version.kind == ModelVersion.Kind.REKOGNITION:
        return RekognitionBackend(model_version, **options)
    if model_version.kind == ModelVersion.Kind.LOCAL:
        # Imported here so the Rekognition path never loads the detector's numeric stack.
        from projects.local_model.detector import LocalDetectorBackend

        return LocalDetectorBackend(model_version)
    raise ModelNotReady(
        f"model version {model_version.name!r} holds imported predictions and cannot run: "
        "import more with 'manage.py import_predictions', or pick a Rekognition or offline model"
    )
