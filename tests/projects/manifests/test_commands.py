import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from projects.manifests.export import iter_manifest_lines
from projects.manifests.split import SplitError, image_score, plan_split
from projects.models import Export, Image, RunStatus
from reviewer.models import Box
from tests.factories import make_box, make_image, make_iteration, make_project
from tests.projects.manifests.test_export import SPEC_LINE

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 11, 28, 10, 15, 3, 123456, tzinfo=UTC)


@pytest.fixture
def iteration():
    project = make_project("logos", labels=("aws-logo", "smile-logo", "rare-logo"))
    iteration = make_iteration(project, "v2")
    image = make_image(iteration, source="s3://my-bucket/v2/train/img-0007.jpg",
                       status=Image.Status.REVIEWED, reviewed_at=WHEN)
    make_box(image, "aws-logo", (120, 88, 310, 140))
    make_box(image, "smile-logo", (600, 402, 96, 97))
    return iteration


def add_images(iteration, count, label_for):
    for number in range(count):
        image = make_image(iteration, source=f"s3://my-bucket/v2/{number:03d}.jpg",
                           status=Image.Status.REVIEWED, reviewed_at=WHEN)
        for name in label_for(number):
            make_box(image, name, (1, 2, 30, 40))


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def read_lines(path):
    return [json.loads(text) for text in path.read_text().splitlines()]


def test_export_manifest_writes_the_file(iteration, tmp_path):
    target = tmp_path / "logos-v2.manifest"
    output = run("export_manifest", "logos/v2", "--output", str(target))
    assert target.read_text() == json.dumps(SPEC_LINE) + "\n"
    assert f"Wrote 1 lines to {target} (manifest)." in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logos-v2.manifest"]
    export = Export.objects.get()
    assert (export.kind, export.status, export.lines, export.uri) == (
        Export.Kind.FILE, RunStatus.SUCCEEDED, 1, str(target))


def test_export_manifest_no_empty_and_warnings(iteration, tmp_path):
    make_image(iteration, source="s3://my-bucket/v2/empty.jpg", status=Image.Status.REVIEWED,
               reviewed_at=WHEN, no_objects=True)
    target = tmp_path / "m.manifest"
    output = run("export_manifest", "logos/v2", "--output", str(target))
    assert len(read_lines(target)) == 2
    assert ("warning [empty] images verified as empty: kept as a record, ignored for training: "
            "1 in 1 image(s)") in output
    run("export_manifest", "logos/v2", "--output", str(target), "--no-empty")
    assert [line["source-ref"] for line in read_lines(target)] == ["s3://my-bucket/v2/train/img-0007.jpg"]


def test_a_refused_export_leaves_no_file_and_prints_the_report(iteration, tmp_path):
    # No label with a box at all: Rekognition will not train (one label would do).
    Box.objects.all().delete()
    target = tmp_path / "m.manifest"
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("export_manifest", "logos/v2", "--output", str(target), stdout=out,
                     stderr=io.StringIO())
    assert str(caught.value) == (
        "the manifest breaks Rekognition's rules (too-few-labels); fix them and export again")
    assert "ERROR [too-few-labels]" in out.getvalue()
    assert list(tmp_path.iterdir()) == []
    assert Export.objects.get().status == RunStatus.FAILED


def test_export_manifest_error_paths(iteration, tmp_path):
    with pytest.raises(CommandError, match="say where the manifest goes"):
        run("export_manifest", "logos/v2")
    with pytest.raises(CommandError, match="project 'logos' has no iteration 'v9'"):
        run("export_manifest", "logos/v9", "--output", str(tmp_path / "m.manifest"))
    with pytest.raises(CommandError, match="folder .* does not exist"):
        run("export_manifest", "logos/v2", "--output", str(tmp_path / "missing" / "m.manifest"))
    with pytest.raises(CommandError, match="must be between 0 and 1"):
        run("export_manifest", "logos/v2", "--output", str(tmp_path / "m.manifest"),
            "--test-fraction", "1.5")
    with pytest.raises(CommandError, match="has no output location"):
        run("export_manifest", "logos/v2", "--s3")


def test_export_manifest_to_s3(iteration, s3):
    s3.create_bucket(Bucket="out")
    iteration.project.output_location = "s3://out/loupe/"
    iteration.project.save()
    output = run("export_manifest", "logos/v2", "--s3")
    export = Export.objects.get()
    assert f"Wrote 1 lines to {export.uri} (manifest)." in output
    body = s3.get_object(Bucket="out", Key=export.uri[len("s3://out/"):])["Body"].read().decode()
    assert body == json.dumps(SPEC_LINE) + "\n"


def test_split_is_deterministic_disjoint_and_covers_every_label(iteration, tmp_path):
    # rare-logo has two images only: the split must put one on each side.
    def labels_of(number):
        return ["aws-logo" if number % 2 else "smile-logo"] + (["rare-logo"] if number in (3, 4) else [])

    add_images(iteration, 40, labels_of)
    target = tmp_path / "logos-v2.manifest"
    output = run("export_manifest", "logos/v2", "--output", str(target), "--test-fraction", "0.2")
    train, test = tmp_path / "logos-v2-train.manifest", tmp_path / "logos-v2-test.manifest"
    assert sorted(p.name for p in tmp_path.iterdir()) == [test.name, train.name]
    assert "(train)" in output and "(test)" in output
    train_lines, test_lines = read_lines(train), read_lines(test)
    train_sources = {line["source-ref"] for line in train_lines}
    test_sources = {line["source-ref"] for line in test_lines}
    assert len(train_sources) + len(test_sources) == 41
    assert train_sources.isdisjoint(test_sources)

    def labels(lines):
        return {name for line in lines for name in line["bounding-box-metadata"]["class-map"].values()}

    assert labels(train_lines) == labels(test_lines) == {"aws-logo", "smile-logo", "rare-logo"}
    first = (train.read_text(), test.read_text())
    run("export_manifest", "logos/v2", "--output", str(target), "--test-fraction", "0.2")
    assert (train.read_text(), test.read_text()) == first


def test_a_split_export_prints_its_notes_and_records_them(iteration, tmp_path):
    add_images(iteration, 30, lambda n: ["aws-logo", "smile-logo"] + (["rare-logo"] if n == 29 else []))
    output = run("export_manifest", "logos/v2", "--output", str(tmp_path / "m.manifest"),
                 "--test-fraction", "0.01")
    note = "label 'rare-logo' has one image only, so it is in one of the two sets only"
    assert "Split: 30 training and 1 test images, 1 moved so that labels appear in both.\n" \
        f"  note: {note}\n" in output
    assert Export.objects.get().report["split"] == {"train": 30, "test": 1, "moved": 1, "notes": [note]}


def test_a_split_publish_reads_the_written_manifest_once(iteration, tmp_path, monkeypatch):
    import builtins

    add_images(iteration, 40, lambda n: ["aws-logo" if n % 2 else "smile-logo"])
    real_open = builtins.open
    reads = []

    def counting_open(file, mode="r", *args, **kwargs):
        if str(file).startswith(str(tmp_path)) and "r" in mode:
            reads.append(str(file)[len(str(tmp_path)) + 1:].split("-")[0])
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    run("export_manifest", "logos/v2", "--output", str(tmp_path / "m.manifest"), "--test-fraction", "0.2")
    monkeypatch.undo()
    # One read of the whole manifest to write, and at the same time validate, the two halves.
    assert reads == [".loupe"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-test.manifest", "m-train.manifest"]


def test_a_failed_split_leaves_no_temporary_files(iteration, tmp_path):
    from projects.manifests.export import ManifestError
    from projects.manifests.publish import ManifestRefused, export_to_file

    with pytest.raises(ManifestError, match="the test fraction must be between 0 and 1"):
        export_to_file(iteration=iteration, path=tmp_path / "m.manifest", test_fraction=1.5)
    assert list(tmp_path.iterdir()) == []
    # One image cannot make two halves: one of them has no labels, and the split is refused.
    with pytest.raises(ManifestRefused, match="set: the manifest breaks Rekognition's rules"):
        export_to_file(iteration=iteration, path=tmp_path / "m.manifest", test_fraction=0.5)
    assert list(tmp_path.iterdir()) == []
    assert list(Export.objects.values_list("status", flat=True)) == [RunStatus.FAILED, RunStatus.FAILED]


def test_split_follows_the_hash_of_each_image():
    lines = [json.dumps({"source-ref": f"s3://b/{n}.jpg"}) for n in range(200)]
    sides, notes, moved = plan_split(lines, test_fraction=0.3)
    assert sides == [image_score(f"s3://b/{n}.jpg") < 0.3 for n in range(200)]
    assert (notes, moved) == ([], 0)
    assert 40 < sum(sides) < 80


def test_split_moves_the_fewest_images_and_reports_single_image_labels(iteration):
    add_images(iteration, 30, lambda n: ["aws-logo", "smile-logo"] if n < 29 else ["aws-logo", "rare-logo"])
    lines = list(iter_manifest_lines(iteration=iteration))
    sides, notes, moved = plan_split(lines, test_fraction=0.01)
    assert notes == ["label 'rare-logo' has one image only, so it is in one of the two sets only"]
    # Both common labels were missing from the tiny test set: one image carrying both is enough.
    assert (sum(sides), moved) == (1, 1)
    with pytest.raises(SplitError, match="between 0 and 1"):
        plan_split(lines, test_fraction=0)


def test_check_manifest_passes_a_good_file(iteration, tmp_path):
    path = tmp_path / "good.manifest"
    path.write_text("".join(iter_manifest_lines(iteration=iteration)))
    output = run("check_manifest", str(path))
    assert output.splitlines()[-1] == "OK: Rekognition will accept this manifest."


def test_check_manifest_fails_a_bad_file_with_the_report(tmp_path):
    path = tmp_path / "bad.manifest"
    bad = dict(SPEC_LINE, **{"source-ref": "s3://other-bucket/x.jpg"})
    path.write_text(json.dumps(SPEC_LINE) + "\n" + json.dumps(bad) + "\n{oops\n")
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("check_manifest", str(path), stdout=out)
    assert str(caught.value) == (
        "3 error(s) (malformed, mixed-buckets, too-many-invalid): Rekognition would refuse this manifest")
    text = out.getvalue()
    assert "ERROR [malformed]" in text and "  line 3: not JSON" in text
    assert "ERROR [mixed-buckets]" in text and "  my-bucket (1), other-bucket (1)" in text
    assert "ERROR [too-many-invalid]" in text


def test_check_manifest_with_a_test_file_checks_the_split(tmp_path):
    train, test = tmp_path / "train.manifest", tmp_path / "test.manifest"
    train.write_text(json.dumps(SPEC_LINE) + "\n")
    test.write_text(json.dumps(SPEC_LINE) + "\n")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 error"):
        call_command("check_manifest", str(train), "--test", str(test), stdout=out)
    assert "ERROR [split] 1 image(s) in both train and test, e.g. s3://my-bucket/v2/train/img-0007.jpg" \
        in out.getvalue()


def test_check_manifest_missing_file(tmp_path):
    with pytest.raises(CommandError, match="no file .*nothing.manifest"):
        run("check_manifest", str(tmp_path / "nothing.manifest"))


def test_import_manifest_command(tmp_path):
    project = make_project("logos")
    iteration = make_iteration(project, "v1")
    path = tmp_path / "v1.manifest"
    path.write_text(json.dumps(SPEC_LINE) + "\n")
    output = run("import_manifest", "logos/v1", str(path))
    assert output.splitlines()[-1] == (
        "1 of 1 lines imported (1 new images, 2 boxes, 0 proposals), 0 rejected, 0 warnings.")
    assert iteration.images.get().boxes.count() == 2


def test_import_manifest_command_reads_the_file_once_and_shows_progress_in_bytes(
        tmp_path, monkeypatch, capsys):
    from projects.management.commands import import_manifest as command

    make_iteration(make_project("logos"), "v1")
    path = tmp_path / "v1.manifest"
    path.write_text(json.dumps(SPEC_LINE) + "\n" + json.dumps(dict(SPEC_LINE, **{"source-ref": "s3://b/2.jpg"}))
                    + "\n")
    opened = []

    def counting_open(file, *args, **kwargs):
        opened.append(str(file))
        return open(file, *args, **kwargs)

    monkeypatch.setattr(command, "open", counting_open, raising=False)
    output = run("import_manifest", "logos/v1", str(path))
    assert opened == [str(path)]
    assert output.splitlines()[-1] == (
        "2 of 2 lines imported (2 new images, 4 boxes, 0 proposals), 0 rejected, 0 warnings.")
    size = path.stat().st_size
    assert capsys.readouterr().err.splitlines()[-1] == f"Importing (bytes) [{'#' * 30}] {size}/{size} (100%)"


def test_import_manifest_command_reports_rejected_lines_and_fails(tmp_path):
    make_iteration(make_project("logos", labels=("aws-logo",)), "v1")
    path = tmp_path / "v1.manifest"
    path.write_text(json.dumps(SPEC_LINE) + "\nnot json\n")
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_manifest", "logos/v1", str(path), stdout=out, stderr=io.StringIO())
    assert str(caught.value) == (
        f"2 line(s) of {path} were not imported (see above); fix them and run the import again")
    assert "line 1: error: label(s) smile-logo not in project 'logos'" in out.getvalue()
    assert "line 2: error: not JSON" in out.getvalue()


def test_import_manifest_command_creates_labels_when_asked(tmp_path):
    project = make_project("logos", labels=("aws-logo",))
    make_iteration(project, "v1")
    path = tmp_path / "v1.manifest"
    path.write_text(json.dumps(SPEC_LINE) + "\n")
    output = run("import_manifest", "logos/v1", str(path), "--create-labels")
    assert "created labels: smile-logo" in output
    assert list(project.labels.values_list("name", flat=True)) == ["aws-logo", "smile-logo"]


def test_import_manifest_command_error_paths(tmp_path):
    with pytest.raises(CommandError, match="no project 'nope'"):
        run("import_manifest", "nope/v1", str(tmp_path / "x.manifest"))
    make_iteration(make_project("logos"), "v1")
    with pytest.raises(CommandError, match="no file"):
        run("import_manifest", "logos/v1", str(tmp_path / "x.manifest"))
