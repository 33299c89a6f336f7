import cv2
import numpy as np
import pytest

from projects.demo import data as demodata
from projects.detections import ImageProposalError, ModelNotReady
from projects.geometry import iou
from projects.local_model import detector
from tests.factories import make_model_version, make_project


def scene(seed, marks, size=(400, 300)):
    """A grey-noise picture with the given (label, style, long side, left, top) marks pasted in."""
    rng = np.random.default_rng(seed)
    width, height = size
    canvas = np.clip(demodata.gradient(rng, width, height) + rng.normal(0, 6, (height, width, 3)), 0, 255)
    canvas = canvas.astype(np.uint8)
    truth = []
    for label, style, side, left, top in marks:
        draw = {"aws-logo": demodata.aws_mark, "smile-logo": demodata.smile_mark}[label]
        colour, alpha = demodata.transform_mark(draw(style), long_side=side, angle=0, gain=1.0)
        demodata.paste(canvas, colour, alpha, left, top)
        truth.append((label, demodata.visible_box(alpha, left, top)))
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY), truth


TRAIN = [("smile-logo", 0, 70, 40, 40), ("aws-logo", 0, 120, 200, 60), ("smile-logo", 0, 55, 260, 200)]
TEST = [("smile-logo", 0, 64, 280, 30), ("aws-logo", 0, 110, 30, 170), ("smile-logo", 0, 80, 150, 120)]


@pytest.fixture(scope="module")
def exemplars():
    return detector.learn([scene(1, TRAIN), scene(2, TRAIN[::-1][:2])])


def test_finds_pasted_marks_where_they_are(exemplars):
    grey, truth = scene(3, TEST)

    found = detector.detect_grey(grey, exemplars)

    for label, box in truth:
        best = max((iou(box, d.box) for d in found if d.label == label), default=0.0)
        assert best >= 0.5, (label, box, found)


def test_one_box_per_object_and_confidences_in_range(exemplars):
    grey, truth = scene(3, TEST)

    found = detector.detect_grey(grey, exemplars, min_confidence=0)

    for _label, box in truth:
        assert sum(1 for d in found if iou(box, d.box) > detector.NMS_IOU) == 1
    assert all(0 <= d.confidence <= 100 for d in found)
    assert all(d.box[0] >= 0 and d.box[1] >= 0 and d.box[0] + d.box[2] <= 400.01 for d in found)


def test_marks_outscore_everything_else(exemplars):
    grey, truth = scene(3, TEST)

    found = detector.detect_grey(grey, exemplars, min_confidence=0)

    hits = [d for d in found if any(iou(box, d.box) >= 0.5 and d.label == lab for lab, box in truth)]
    misses = [d for d in found if d not in hits]
    assert len(hits) == len(truth)
    assert min(d.confidence for d in hits) > max((d.confidence for d in misses), default=0)


def test_an_empty_picture_gives_nothing_confident(exemplars):
    grey, _ = scene(4, [])

    assert [d for d in detector.detect_grey(grey, exemplars) if d.confidence >= 50] == []


def test_exemplars_survive_storage_as_bytes(exemplars):
    again = detector.ExemplarSet.from_bytes(exemplars.to_bytes())

    assert again.labels == exemplars.labels == ["aws-logo", "smile-logo"]
    assert again.sides == exemplars.sides
    for a, b in zip(again.exemplars, exemplars.exemplars, strict=True):
        assert (a.label, a.source_side, a.background) == (b.label, b.source_side, b.background)
        assert np.array_equal(a.pixels, b.pixels)


def test_training_measures_each_exemplar_on_the_other_images(exemplars):
    # Three smiles and two aws marks, each measured on the other image: a real clutter score.
    assert len(exemplars.for_label("smile-logo")) == 3
    assert len(exemplars.for_label("aws-logo")) == 2
    assert all(e.background != detector.DEFAULT_BACKGROUND for e in exemplars.exemplars)
    assert all(max(e.pixels.shape) == detector.TEMPLATE_SIDE for e in exemplars.exemplars)


def test_flat_or_tiny_boxes_make_no_exemplar():
    grey = np.full((100, 100), 128, np.uint8)
    assert detector.crop_exemplar(grey, (10, 10, 40, 40), "x") is None
    assert detector.crop_exemplar(grey, (10, 10, 2, 40), "x") is None


def test_decoding_garbage_is_an_image_error():
    with pytest.raises(ImageProposalError) as error:
        detector.decode_grey(b"not an image")
    assert error.value.code == "InvalidImageFormat"


@pytest.mark.django_db
def test_backend_refuses_a_model_that_is_not_ready():
    project = make_project()
    training = make_model_version(project, "v1", kind="local", status="TRAINING")
    with pytest.raises(ModelNotReady):
        detector.LocalDetectorBackend(training)
    missing = make_model_version(project, "v2", kind="local", status="READY", artifact="models/none.npz")
    with pytest.raises(ModelNotReady):
        detector.LocalDetectorBackend(missing)


def test_boxes_are_clamped_into_the_frame_and_rounded_to_a_tenth():
    grey, truth = scene(3, TEST)
    # An object cut by the right edge: its box is clamped into the 400 px wide frame.
    grey = grey[:, :300]
    detections = detector.detect_grey(grey, detector.learn([scene(1, TRAIN)]), min_confidence=0)
    assert detections
    for found in detections:
        left, top, width, height = found.box
        assert 0 <= left and 0 <= top and left + width <= 300 and top + height <= 300
        assert all(round(value, 1) == value for value in found.box)
