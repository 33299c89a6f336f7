"""The trained (HOG + linear SVM) detector on a small scene, and the versioned model files."""

import io
import json

import cv2
import numpy as np
import pytest

from projects.detections import ModelNotReady
from projects.geometry import iou
from projects.local_model import detector, trained
from tests.projects.local_model.test_detector import TEST, TRAIN, scene


def rgb(seed, marks):
    grey, truth = scene(seed, marks)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB), truth


@pytest.fixture(scope="module")
def model():
    return trained.learn([rgb(1, TRAIN), rgb(2, TRAIN[::-1][:2]), rgb(3, TEST), rgb(4, [])])


def test_the_trained_detector_finds_its_marks_and_survives_its_file(model):
    pixels, truth = rgb(5, TEST)

    found = trained.detect(pixels, model)

    for label, box in truth:
        assert any(d.label == label and iou(d.box, box) >= 0.5 for d in found), (label, box, found)
    again = detector.load_model(model.to_bytes())
    assert isinstance(again, trained.HogModel) and again.labels == ["aws-logo", "smile-logo"]
    assert [d.box for d in trained.detect(pixels, again)] == [d.box for d in found]


def test_template_model_files_from_before_still_load():
    grey, truth = scene(1, TRAIN)
    exemplars = detector.learn([(grey, truth)])

    assert isinstance(detector.load_model(exemplars.to_bytes()), detector.ExemplarSet)


def test_a_model_file_of_an_unknown_format_is_refused_with_a_message():
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.array(json.dumps({"format": "loupe-cnn-9", "parts": []})))

    with pytest.raises(ModelNotReady, match="format 'loupe-cnn-9'.*train it again"):
        detector.load_model(buffer.getvalue())
