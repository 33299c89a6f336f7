"""Images Rekognition and the browser would see in different frames, or not accept at all (issue 11,
points 8-10): EXIF orientation, aspect ratio, and sizes in AWS's decimal megabytes."""

import io

import pytest
from PIL import Image as PILImage

from projects.images.importing import import_folder, import_s3_prefix, read_header
from tests.factories import image_bytes, make_iteration

pytestmark = pytest.mark.django_db


def jpeg_with_orientation(orientation, width=200, height=100):
    """A JPEG whose stored pixels are width x height, tagged with an EXIF orientation."""
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), (10, 120, 200)).save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def test_the_header_reads_the_exif_orientation():
    assert read_header(jpeg_with_orientation(6)).orientation == 6
    assert read_header(jpeg_with_orientation(1)).orientation == 1
    assert read_header(image_bytes(200, 100)).orientation == 1


def test_a_jpeg_with_exif_orientation_6_is_refused_with_a_clear_message(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "rotated.jpg").write_bytes(jpeg_with_orientation(6))
    (folder / "upright.jpg").write_bytes(jpeg_with_orientation(1))
    iteration = make_iteration()
    report = import_folder(iteration=iteration, folder=folder)
    assert report.rejected == [(
        "rotated.jpg",
        "EXIF orientation 6 (rotated 90° clockwise): browsers and the detector would show it turned "
        "while its stored 200x100 px frame is not, so boxes would land in the wrong place; save the "
        "image upright (e.g. 'exiftran -ai' or 'mogrify -auto-orient') and import it again",
    )]
    assert list(iteration.images.values_list("name", "width", "height")) == [("upright.jpg", 200, 100)]


def test_a_rotated_jpeg_in_s3_is_refused_from_its_header(s3):
    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="v2/rotated.jpg", Body=jpeg_with_orientation(8))
    iteration = make_iteration()
    report = import_s3_prefix(iteration=iteration, uri="s3://photos/v2/")
    assert report.imported == 0
    assert report.rejected[0][0] == "v2/rotated.jpg"
    assert report.rejected[0][1].startswith("EXIF orientation 8 (rotated 90° counter-clockwise): ")


@pytest.mark.parametrize(
    ("width", "height", "reason"),
    [
        (4000, 100, "aspect ratio 40:1 (4000x100 px) is above Rekognition's maximum of 20:1"),
        (100, 2001, "aspect ratio 20.01:1 (100x2001 px) is above Rekognition's maximum of 20:1"),
        (2000, 100, None),
    ],
)
def test_aspect_ratios_above_20_to_1_are_refused(tmp_path, width, height, reason):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "strip.png").write_bytes(image_bytes(width, height, "PNG"))
    report = import_folder(iteration=make_iteration(), folder=folder)
    assert report.rejected == ([("strip.png", reason)] if reason else [])
    assert report.imported == (0 if reason else 1)


@pytest.mark.parametrize(("size", "refused"), [(15_000_000, False), (15_000_001, True)])
def test_the_size_limit_is_15_decimal_megabytes(tmp_path, size, refused):
    folder = tmp_path / "in"
    folder.mkdir()
    head = image_bytes(128, 128)
    (folder / "big.jpg").write_bytes(head + b"\0" * (size - len(head)))
    report = import_folder(iteration=make_iteration(), folder=folder)
    expected = [("big.jpg", "file is 15.0 MB; Rekognition accepts at most 15 MB (15,000,000 bytes)")]
    assert report.rejected == (expected if refused else [])
