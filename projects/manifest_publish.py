"""Manifests leaving Loupe: a file on disk, a browser download, or a publish to S3.

Each one is validated against Rekognition's rules first and refused when it has errors, is
recorded as an Export row, and is never half-written: files go to a temporary name and are renamed
when complete; S3 objects already uploaded by a publish that then fails are deleted again.
"""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.utils import timezone

from projects import s3
from projects.manifest import (
    CHUNK_SIZE,
    ManifestError,
    iter_manifest_lines,
    manifest_filename,
    validate_export,
    write_manifest,
)
from projects.manifest_checks import check_split, validate_lines
from projects.manifest_split import SplitError, split_manifest_file
from projects.models import Export, RunStatus


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


def _start(iteration, kind, options, user):
    return Export.objects.create(
        iteration=iteration, kind=kind, status=RunStatus.RUNNING, options=options, created_by=user,
    )


def _fail(export, error):
    export.status = RunStatus.FAILED
    export.error = str(error)
    report = getattr(error, "report", None)
    if report is not None:
        export.report = {"validation": report.as_dict()}
    export.finished_at = timezone.now()
    export.save(update_fields=["status", "error", "report", "finished_at"])


def _succeed(export, parts, uris):
    export.status = RunStatus.SUCCEEDED
    export.lines = sum(part.lines for part in parts)
    export.uri = uris[0]
    export.report = {
        "validation": parts[0].report.as_dict() if len(parts) == 1 else None,
        "files": [
            {"uri": uri, "lines": part.lines, "role": part.suffix.lstrip("-") or "manifest",
             "validation": part.report.as_dict()}
            for part, uri in zip(parts, uris, strict=True)
        ],
    }
    export.finished_at = timezone.now()
    export.save(update_fields=["status", "lines", "uri", "report", "finished_at"])


def refusal(report):
    codes = ", ".join(issue.code for issue in report.errors)
    return f"the manifest breaks Rekognition's rules ({codes}); fix them and export again"


def _write_checked(*, iteration, folder, options, test_fraction, progress):
    """Write (and split) the manifest into temporary files in folder; refuse on any error."""
    handle = tempfile.NamedTemporaryFile(
        "w", dir=folder, prefix=".loupe-", suffix=".manifest.part", delete=False, encoding="utf-8"
    )
    whole = Path(handle.name)
    try:
        with handle:
            result = write_manifest(iteration=iteration, out=handle, progress=progress, **options)
        if not result.report.ok:
            raise ManifestRefused(refusal(result.report), result.report)
        if not test_fraction:
            return [_Part(whole, "", result.lines, result.report)]
        parts = _split(whole, folder, test_fraction)
        whole.unlink()
        return parts
    except BaseException:
        whole.unlink(missing_ok=True)
        raise


def _split(whole, folder, test_fraction):
    paths = {}
    try:
        for suffix in ("-train", "-test"):
            fd, name = tempfile.mkstemp(dir=folder, prefix=".loupe-", suffix=suffix + ".part")
            os.close(fd)
            paths[suffix] = Path(name)
        with open(paths["-train"], "w", encoding="utf-8") as train, \
                open(paths["-test"], "w", encoding="utf-8") as test:
            split_manifest_file(path=whole, train_out=train, test_out=test, test_fraction=test_fraction)
        parts = []
        for suffix, path in paths.items():
            with open(path, encoding="utf-8") as lines:
                report = validate_lines(lines)
            if not report.ok:
                raise ManifestRefused(f"{suffix[1:]} set: {refusal(report)}", report)
            parts.append(_Part(path, suffix, report.lines, report))
        with open(paths["-train"], encoding="utf-8") as train, \
                open(paths["-test"], encoding="utf-8") as test:
            problems = check_split(train, test)
        if problems:
            raise ManifestRefused("; ".join(problems))
        return parts
    except SplitError as error:
        raise ManifestError(str(error)) from None
    except BaseException:
        for path in paths.values():
            path.unlink(missing_ok=True)
        raise


def _options(include_unreviewed, include_empty):
    return {"include_unreviewed": include_unreviewed, "include_empty": include_empty}


def _suffixed(path, suffix):
    return path.with_name(path.stem + suffix + path.suffix) if suffix else path


def export_to_file(*, iteration, path, include_unreviewed=False, include_empty=True, test_fraction=None,
                   user=None, progress=None):
    """Write the manifest (or its -train and -test halves) next to path; returns the Export."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ManifestError(f"folder {path.parent} does not exist: create it or choose another --output")
    options = _options(include_unreviewed, include_empty)
    export = _start(iteration, Export.Kind.FILE, {**options, "test_fraction": test_fraction}, user)
    try:
        parts = _write_checked(iteration=iteration, folder=path.parent, options=options,
                               test_fraction=test_fraction, progress=progress)
    except Exception as error:
        # Whatever stopped it, the Export must not stay "running" forever.
        _fail(export, error)
        raise
    targets = [_suffixed(path, part.suffix) for part in parts]
    for part, target in zip(parts, targets, strict=True):
        os.replace(part.temp, target)
    _succeed(export, parts, [str(target) for target in targets])
    return export


def queue_publish(*, iteration, include_unreviewed=False, include_empty=True, test_fraction=None, user=None):
    """The Export row a background publish will fill in (see projects.manifest_tasks)."""
    output_location(iteration.project)
    options = {**_options(include_unreviewed, include_empty), "test_fraction": test_fraction}
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
    options = _options(include_unreviewed, include_empty)
    if export is None:
        export = _start(iteration, Export.Kind.S3, {**options, "test_fraction": test_fraction}, user)
    else:
        export.status = RunStatus.RUNNING
        export.save(update_fields=["status"])
    region = project.region or None
    try:
        location = output_location(project)
        with tempfile.TemporaryDirectory(prefix="loupe-publish-") as folder:
            parts = _write_checked(iteration=iteration, folder=folder, options=options,
                                   test_fraction=test_fraction, progress=progress)
            _check_bucket_owner(parts[0].report, location.bucket, region)
            uris = _upload(parts, location, iteration, region)
    except Exception as error:
        # Whatever stopped it, the Export must not stay "running" forever.
        _fail(export, error)
        raise
    _succeed(export, parts, uris)
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


def _upload(parts, location, iteration, region):
    prefix = location.key if not location.key or location.key.endswith("/") else location.key + "/"
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    base = manifest_filename(iteration)[: -len(".manifest")]
    done = []
    try:
        for part in parts:
            key = f"{prefix}{base}-{stamp}{part.suffix}.manifest"
            with open(part.temp, "rb") as body:
                s3.upload_fileobj(body, location.bucket, key, content_type="application/jsonlines",
                                  region=region)
            done.append(key)
    except s3.S3Error as error:
        for key in done:
            try:
                s3.delete_object(location.bucket, key, region=region)
            except s3.S3Error:
                pass
        raise ManifestError(f"publishing to s3://{location.bucket}/{prefix} failed: {error}") from None
    return [f"s3://{location.bucket}/{key}" for key in done]


def check_download(*, iteration, include_unreviewed=False, include_empty=True):
    """The validation report of what a download would contain."""
    return validate_export(iteration=iteration, include_unreviewed=include_unreviewed,
                           include_empty=include_empty)


def start_download(*, iteration, include_unreviewed=False, include_empty=True, user=None):
    """Validate, record the Export, and return (export, iterator of the manifest's lines)."""
    options = _options(include_unreviewed, include_empty)
    export = _start(iteration, Export.Kind.DOWNLOAD, options, user)
    try:
        report = check_download(iteration=iteration, **options)
        if not report.ok:
            raise ManifestRefused(refusal(report), report)
    except Exception as error:
        # Whatever stopped it, the Export must not stay "running" forever.
        _fail(export, error)
        raise
    export.report = {"validation": report.as_dict()}
    export.save(update_fields=["report"])
    return export, _stream(export, iteration, options)


def _stream(export, iteration, options):
    lines = 0
    try:
        for line in iter_manifest_lines(iteration=iteration, chunk_size=CHUNK_SIZE, **options):
            lines += 1
            yield line
    except GeneratorExit:
        export.lines = lines
        _fail(export, "the download was interrupted before the manifest was complete")
        raise
    except Exception as error:
        export.lines = lines
        _fail(export, f"the download failed after {lines} lines: {error}")
        raise
    export.status = RunStatus.SUCCEEDED
    export.lines = lines
    export.uri = manifest_filename(iteration)
    export.finished_at = timezone.now()
    export.save(update_fields=["status", "lines", "uri", "finished_at"])
