"""Proposal backends: one small protocol, image in, detections out.

A backend is chosen by the ModelVersion's kind (see backend_for), never by dotted paths in settings.
"""

from dataclasses import dataclass
from typing import Protocol


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


class ProposalBackend(Protocol):
    def detect(self, image) -> list[Detection]: ...
