import json

from projects.demo import data as demodata
from projects.manifests.checks import validate_lines

SMALL = {"v1": 2, "v2": 1, "test": 1}


def test_same_seed_gives_the_same_bytes_and_boxes():
    first = demodata.demo_image(123, "v1", 0)
    second = demodata.demo_image(123, "v1", 0)
    assert first.jpeg == second.jpeg
    assert first.objects == second.objects
    assert first.jpeg[:3] == b"\xff\xd8\xff"


def test_other_seeds_sets_and_indexes_give_other_images():
    base = demodata.demo_image(123, "v1", 0).jpeg
    assert demodata.demo_image(124, "v1", 0).jpeg != base
    assert demodata.demo_image(123, "v2", 0).jpeg != base
    assert demodata.demo_image(123, "v1", 1).jpeg != base


def test_images_hold_one_to_three_marks_inside_the_frame():
    for index in range(6):
        image = demodata.demo_image(demodata.DEFAULT_SEED, "test", index)
        assert 640 <= image.width <= 1024 and 480 <= image.height <= 768
        assert 1 <= len(image.objects) <= 3
        for obj in image.objects:
            left, top, width, height = obj.box
            assert obj.label in demodata.LABELS
            assert left >= 0 and top >= 0 and width > 10 and height > 10
            assert left + width <= image.width and top + height <= image.height


def test_written_sets_have_a_manifest_rekognition_accepts(tmp_path):
    # The reduced sets, as demo_loop --size reduced uses them: both labels in every set.
    sets = demodata.generate_demo_data(folder=tmp_path, sizes=demodata.REDUCED_SET_SIZES)

    for set_name, images in sets.items():
        path = demodata.manifest_path(tmp_path, set_name)
        report = validate_lines(path.read_text().splitlines())
        assert report.ok, report.as_text()
        assert report.lines == len(images)
        assert report.boxes == sum(len(image.objects) for image in images)
        files = sorted(p.name for p in demodata.images_folder(tmp_path, set_name).iterdir())
        assert files == sorted(image.name for image in images)


def test_manifest_lines_carry_the_generated_boxes(tmp_path):
    images = demodata.write_set(folder=tmp_path, set_name="v1", count=2, seed=9)

    lines = [json.loads(text) for text in demodata.manifest_path(tmp_path, "v1").read_text().splitlines()]
    first, image = lines[0], images[0]
    assert first["source-ref"] == demodata.PUBLISHED_IMAGES_URI + image.name
    assert first["bounding-box"]["image_size"] == [{"width": image.width, "height": image.height, "depth": 3}]
    class_map = first["bounding-box-metadata"]["class-map"]
    assert class_map == {"0": "aws-logo", "1": "smile-logo"}
    assert [
        (class_map[str(a["class_id"])], (a["left"], a["top"], a["width"], a["height"]))
        for a in first["bounding-box"]["annotations"]
    ] == [(obj.label, obj.box) for obj in image.objects]
    assert first["bounding-box-metadata"]["objects"] == [{"confidence": 1}] * len(image.objects)


def test_generating_again_rewrites_nothing(tmp_path):
    demodata.generate_demo_data(folder=tmp_path, seed=5, sizes=SMALL)
    files = sorted(tmp_path.rglob("*.*"))
    stamps = [path.stat().st_mtime_ns for path in files]

    demodata.generate_demo_data(folder=tmp_path, seed=5, sizes=SMALL)

    assert [path.stat().st_mtime_ns for path in files] == stamps


def test_a_smaller_set_is_the_start_of_a_larger_one(tmp_path):
    small = demodata.write_set(folder=tmp_path / "a", set_name="v2", count=2, seed=7)
    large = demodata.write_set(folder=tmp_path / "b", set_name="v2", count=3, seed=7)

    assert [image.jpeg for image in small] == [image.jpeg for image in large[:2]]
