"""What every proposal backend shares: the Detection it returns, its errors and its protocol.

Imports nothing from the project, so the proposal runs, the Rekognition backend, the local
detector and the importers can all depend on it without depending on each other.
"""

from dataclasses import dataclass
from typing import Protocol

MAX_CONCURRENCY = 32
NOT_RUNNING_MESSAGE = "model is not running: start it"
# Confidence points either side of a label's threshold where a reviewer's accept/reject decision
# is a toss-up.
UNCERTAIN_BAND = 15.0


def uncertainty_score(confidences_and_thresholds):
    """How much a reviewer is needed on this image; higher is reviewed first.

    Boxes far above their threshold are almost surely right and boxes far below are almost surely
    noise; the ones within UNCERTAIN_BAND of the threshold are where the model needs a person.
    So the score is the number of such borderline boxes, plus how close the closest box sits to its
    threshold (0..1) to order images with equally many. An image with no detections scores 0:
    there is nothing to judge (misses are caught by the reviewer either way).
    """
    distances = [abs(conf - threshold) for conf, threshold in confidences_and_thresholds]
    if not distances:
        return 0.0
    borderline = sum(1 for distance in distances if distance <= UNCERTAIN_BAND)
    closest = min(distances)
    return round(borderline + (1.0 - min(closest, 100.0) / 100.0), 6)


@dataclass(frozen=True)
class Detection:
    label: str
    confidence: float  # 0..100
    # (left, top, width, height) in pixels of the original image; None for an image-level label.
    box: tuple[float, float, float, float] | None


class ImageProposalError(Exception):
    """This image could not be processed (bad format, too large, ...); the run goes on."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ModelNotReady(Exception):
    """The model cannot serve at all (not running, not found, access denied): stop the run."""


class InvalidDetection(ValueError):
    """A backend returned a box or confidence that cannot be stored."""


class ProposalBackend(Protocol):
    def detect(self, image) -> list[Detection]: ...



def check_detection(detection):
    if not 0 <= detection.confidence <= 100:
        raise InvalidDetection(f"confidence {detection.confidence} of {detection.label!r} is not 0..100")
    if detection.box is None:
        return
    left, top, width, height = detection.box
    if left < 0 or top < 0 or width <= 0 or height <= 0:
        raise InvalidDetection(
            f"box {detection.box} of {detection.label!r} needs left, top >= 0 and width, height > 0"
        )
