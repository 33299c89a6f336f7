"""Manifests leaving Loupe: a file on disk, a browser download, or a publish to S3.

Each one is written once to a temporary file, validated against Rekognition's rules while it is
written, and refused when it has errors; what leaves Loupe is that file, so it is exactly what was
validated. Each is recorded as an Export row and is never half-written: files go to a temporary
name and are renamed when complete; S3 objects already uploaded by a publish that then fails are
deleted again, and those of a publish whose worker was killed (its keys are recorded before the
first upload) are deleted by the iteration's next publish.
"""

import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.utils import timezone

from projects import runs as lifecycle
from projects.aws import s3
from projects.manifests.checks import TEST, TRAIN, ManifestValidator, split_problems
from projects.manifests.export import ManifestError, manifest_filename, write_manifest
from projects.manifests.split import SplitError, SplitPlanner, write_split
from projects.models import Export, RunStatus

logger = logging.getLogger("loupe.exports")


class ManifestRefused(ManifestError):
    """The manifest breaks Rekognition's rules; `report` says which and where."""

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


@dataclass
class _Part:
    temp: Path
    suffix: str  # "", "-train" or "-test"
    lines: int
    report: object


def export_options(include_unreviewed, include_empty):
    """The options an Export row records, as the exporters take them."""
    return {"include_unreviewed": include_unreviewed, "include_empty": include_empty}


def start_export(iteration, kind, options, user):
    """A new Export row of this kind, already running."""
    export = Export.objects.create(iteration=iteration, kind=kind, options=options, created_by=user)
    return lifecycle.begin(export)


def _failing(export):
    """Whatever stops an export, its row must not stay "running" forever; a refusal keeps its
    validation report for the page."""
    return lifecycle.failing(export, plain=(ManifestError, s3.S3Error), fields=_failure_report)


def _failure_report(error):
    report = getattr(error, "report", None)
    return {} if report is None else {"report": {"validation": report.as_dict()}}


def _beating(export, progress):
    """The caller's progress callback, plus the export's heartbeat."""
    def both(done, total):
        lifecycle.heartbeat(export)
        if progress:
            progress(done, total)
    return both


def _succeed(export, parts, uris, split=None):
    report = {
        "validation": parts[0].report.as_dict() if len(parts) == 1 else None,
        "files": [
            {"uri": uri, "lines": part.lines, "role": part.suffix.lstrip("-") or "manifest",
             "validation": part.report.as_dict()}
            for part, uri in zip(parts, uris, strict=True)
        ],
    }
    if split is not None:
        report["split"] = split.as_dict()
    lifecycle.finish(export, RunStatus.SUCCEEDED, lines=sum(part.lines for part in parts), uri=uris[0],
                     report=report)


def refusal(report):
    codes = ", ".join(issue.code for issue in report.errors)
    return f"the manifest breaks Rekognition's rules ({codes}); fix them and export again"


def _temporary(folder, suffix):
    fd, name = tempfile.mkstemp(dir=folder, prefix=".loupe-", suffix=suffix)
    os.close(fd)
    return Path(name)


def _write_checked(*, iteration, folder, options, test_fraction, progress):
    """Write (and split) the manifest into temporary files in folder; refuse on any error.

    Returns (parts, SplitResult or None). Whatever fails, no temporary file is left behind.
    """
    temps = []
    kept = set()
    try:
        planner = SplitPlanner(test_fraction=test_fraction) if test_fraction else None
        whole = _temporary(folder, ".manifest.part")
        temps.append(whole)
        with open(whole, "w", encoding="utf-8") as out:
            result = write_manifest(
                iteration=iteration, out=out, progress=progress, regional_quota=planner is None, **options,
                # The split is planned from the records as they are written: no pass over the file.
                on_record=None if planner is None else
                lambda record: planner.add(record.source_ref, record.labels()),
            )
        if not result.report.ok:
            raise ManifestRefused(refusal(result.report), result.report)
        if planner is None:
            parts, split = [_Part(whole, "", result.lines, result.report)], None
        else:
            parts, split = _split(whole, folder, planner, temps, iteration.project.region)
        kept = {part.temp for part in parts}
        return parts, split
    except SplitError as error:
        raise ManifestError(str(error)) from None
    finally:
        for path in temps:
            if path not in kept:
                path.unlink(missing_ok=True)


class _SideCheck:
    """Validates one half of a split while it is written, and keeps what check_split compares."""

    def __init__(self, region, purpose):
        self.validator = ManifestValidator(region=region, purpose=purpose)
        self.sources = set()
        self.lines = 0

    def add(self, text):
        self.lines += 1
        obj = self.validator.add_line(text, line_number=self.lines)
        if isinstance(obj, dict):
            self.sources.add(obj.get("source-ref"))


def _split(whole, folder, planner, temps, region):
    """Split the checked manifest at whole into -train and -test files, validating both on the way.

    One read of the manifest: the plan comes from the planner fed while it was written.
    """
    sides, notes, moved = planner.plan()
    paths = {}
    for suffix in ("-train", "-test"):
        paths[suffix] = _temporary(folder, suffix + ".part")
        temps.append(paths[suffix])
    checks = {"-train": _SideCheck(region, TRAIN), "-test": _SideCheck(region, TEST)}
    with open(whole, encoding="utf-8") as lines, \
            open(paths["-train"], "w", encoding="utf-8") as train, \
            open(paths["-test"], "w", encoding="utf-8") as test:
        split = write_split(
            lines=lines, sides=sides, train_out=train, test_out=test,
            on_line=lambda to_test, text: checks["-test" if to_test else "-train"].add(text),
        )
    split.moved, split.notes = moved, notes
    parts = []
    for suffix, check in checks.items():
        report = check.validator.report()
        if not report.ok:
            raise ManifestRefused(f"{suffix[1:]} set: {refusal(report)}", report)
        parts.append(_Part(paths[suffix], suffix, report.lines, report))
    train, test = checks["-train"], checks["-test"]
    problems = split_problems(train.sources, set(parts[0].report.labels),
                              test.sources, set(parts[1].report.labels))
    if problems:
        raise ManifestRefused("; ".join(problems))
    return parts, split


def _suffixed(path, suffix):
    return path.with_name(path.stem + suffix + path.suffix) if suffix else path


def export_to_file(*, iteration, path, include_unreviewed=False, include_empty=True, test_fraction=None,
                   user=None, progress=None):
    """Write the manifest (or its -train and -test halves) next to path; returns the Export."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ManifestError(f"folder {path.parent} does not exist: create it or choose another --output")
    options = export_options(include_unreviewed, include_empty)
    export = start_export(iteration, Export.Kind.FILE, {**options, "test_fraction": test_fraction}, user)
    with _failing(export):
        parts, split = _write_checked(iteration=iteration, folder=path.parent, options=options,
                                      test_fraction=test_fraction, progress=_beating(export, progress))
    targets = [_suffixed(path, part.suffix) for part in parts]
    for part, target in zip(parts, targets, strict=True):
        os.replace(part.temp, target)
    _succeed(export, parts, [str(target) for target in targets], split)
    return export


def queue_publish(*, iteration, include_unreviewed=False, include_empty=True, test_fraction=None, user=None):
    """The Export row a background publish will fill in (see projects.manifests.tasks)."""
    output_location(iteration.project)
    options = {**export_options(include_unreviewed, include_empty), "test_fraction": test_fraction}
    return Export.objects.create(iteration=iteration, kind=Export.Kind.S3, options=options, created_by=user)


def output_location(project):
    if not project.output_location.strip():
        raise ManifestError(
            f"project {project.slug!r} has no output location: set 'Output location' in its settings "
            "to the s3://bucket/prefix/ where manifests should go"
        )
    try:
        return s3.parse_s3_uri(project.output_location.strip())
    except s3.S3Error as error:
        raise ManifestError(f"the project's output location is not usable: {error}") from None


def publish_to_s3(*, iteration, include_unreviewed=False, include_empty=True, test_fraction=None,
                  user=None, progress=None, export=None):
    """Upload the checked manifest under the project's output location; returns the Export.

    export: a queued Export row to fill in (from queue_publish) instead of creating one.
    """
    project = iteration.project
    options = export_options(include_unreviewed, include_empty)
    if export is None:
        export = start_export(iteration, Export.Kind.S3, {**options, "test_fraction": test_fraction}, user)
    else:
        lifecycle.begin(export)
    region = project.region or None
    with _failing(export):
        location = output_location(project)
        _remove_killed_uploads(iteration, region)
        with tempfile.TemporaryDirectory(prefix="loupe-publish-") as folder:
            parts, split = _write_checked(iteration=iteration, folder=folder, options=options,
                                          test_fraction=test_fraction, progress=_beating(export, progress))
            _check_bucket_owner(parts[0].report, location.bucket, region)
            uris = _upload(parts, location, iteration, region, export)
    _succeed(export, parts, uris, split)
    return export


def _check_bucket_owner(report, bucket, region):
    # Rekognition reads the images with the manifest bucket owner's rights.
    for image_bucket in report.buckets:
        if image_bucket == bucket:
            continue
        owners = s3.bucket_owner(image_bucket, region=region), s3.bucket_owner(bucket, region=region)
        if all(owners) and owners[0] != owners[1]:
            raise ManifestError(
                f"the images' bucket {image_bucket} and the output bucket {bucket} have different "
                "owners; Rekognition needs both owned by the same account: choose an output "
                "location in the images' account"
            )


# On an S3 Export's report while it uploads: the URIs it may have put in S3 (see _remove_killed_uploads).
UPLOADING = "uploading"


def _remove_killed_uploads(iteration, region):
    """Delete what publishes of this iteration killed mid-upload put in S3 (half a split, say).

    Only failed ones: reconcile has declared their worker dead, so nothing uploads there any more.
    A publish that failed by itself deleted its objects already and kept no such record.
    """
    killed = Export.objects.filter(iteration=iteration, kind=Export.Kind.S3, status=RunStatus.FAILED,
                                   report__has_key=UPLOADING)
    for old in killed:
        try:
            for uri in old.report[UPLOADING]:
                location = s3.parse_s3_uri(uri)
                s3.delete_object(location.bucket, location.key, region=region)
        except s3.S3Error as error:
            # Not this publish's fault: it goes on, and the next one tries again.
            logger.warning("could not delete what killed export #%s uploaded: %s", old.pk, error)
            continue
        _forget_uploads(old)


def _forget_uploads(export):
    export.report = {key: value for key, value in (export.report or {}).items() if key != UPLOADING}
    Export.objects.filter(pk=export.pk).update(report=export.report)


def _upload(parts, location, iteration, region, export):
    prefix = location.key if not location.key or location.key.endswith("/") else location.key + "/"
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    base = manifest_filename(iteration)[: -len(".manifest")]
    # The Export id keeps two publishes of the same second from overwriting each other.
    keys = [f"{prefix}{base}-{stamp}-export{export.pk}{part.suffix}.manifest" for part in parts]
    # Recorded before the first byte leaves: a worker killed between two uploads leaves half an
    # export in S3, which the next publish deletes.
    export.report = {**(export.report or {}), UPLOADING: [f"s3://{location.bucket}/{key}" for key in keys]}
    Export.objects.filter(pk=export.pk).update(report=export.report)
    done = []
    try:
        for part, key in zip(parts, keys, strict=True):
            with open(part.temp, "rb") as body:
                s3.upload_fileobj(body, location.bucket, key, content_type="application/jsonlines",
                                  region=region)
            done.append(key)
            lifecycle.heartbeat(export)
    except s3.S3Error as error:
        left = False
        for key in done:
            try:
                s3.delete_object(location.bucket, key, region=region)
            except s3.S3Error:
                left = True
        if not left:
            _forget_uploads(export)
        raise ManifestError(f"publishing to s3://{location.bucket}/{prefix} failed: {error}") from None
    return [f"s3://{location.bucket}/{key}" for key in done]


def write_temporary_manifest(*, iteration, options):
    """The manifest written once to an anonymous temporary file, validated on the way:
    (the file opened in binary at its start, the export result). The file disappears when closed;
    if writing fails it is closed here."""
    handle = tempfile.TemporaryFile()
    try:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        result = write_manifest(iteration=iteration, out=text, **options)
        text.flush()
        text.detach()
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return handle, result


def prepare_download(*, iteration, include_unreviewed=False, include_empty=True, user=None):
    """Write the manifest once to an anonymous temporary file, validating it on the way.

    Returns (export, the file opened in binary at its start): the file is exactly what was
    validated, and disappears when closed. The Export is recorded as succeeded once the file is
    complete (sending it is the web server's job) or as failed; raises ManifestRefused when
    Rekognition would refuse the manifest, ManifestError when it cannot be built.
    """
    options = export_options(include_unreviewed, include_empty)
    export = start_export(iteration, Export.Kind.DOWNLOAD, options, user)
    with _failing(export):
        # No heartbeat: this runs inside the request, and finishing overwrites what a
        # reconcile may have concluded meanwhile.
        handle, result = write_temporary_manifest(iteration=iteration, options=options)
        if not result.report.ok:
            handle.close()
            raise ManifestRefused(refusal(result.report), result.report)
    lifecycle.finish(export, RunStatus.SUCCEEDED, lines=result.lines, uri=manifest_filename(iteration),
                     report={"validation": result.report.as_dict()})
    return export, handle
