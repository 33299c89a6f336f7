"""Importing images into an iteration: from a local folder, uploaded files, or an S3 prefix.

Only the header of each image is read (width, height, format, EXIF orientation). Every file that
is not taken is reported with its reason; one bad file never stops the rest. Images whose EXIF
orientation is not 1 are refused: browsers and OpenCV would draw them rotated while their header
size (what the manifest and Rekognition's ratios use) is unrotated. The limits and their AWS pages:
docs/rekognition-rules.md. Browser uploads are staged in Loupe's storage and imported by a
background ImportRun, like S3 prefixes: a request only stores the bytes, however many files it
carries.
"""

import io
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from projects import runs as lifecycle
from projects.aws import s3
from projects.aws.regions import bucket_mismatch
from projects.models import Image, ImportRun, RunStatus, bucket_problem
from projects.rules import (
    IMAGE_EXTENSIONS,
    IMAGE_FORMATS,
    MAX_ASPECT,
    MAX_IMAGE_BYTES,
    MAX_SIDE,
    MB,
    MIN_SIDE,
    UPRIGHT,
    size_text,
)

# Enough for the header of nearly every JPEG (EXIF can push the frame header past 64 KB; then
# the read is retried with more).
HEADER_BYTES = (64 * 1024, 1024 * 1024)
# Rows per bulk insert, and keys per S3 batch: also the longest `source IN (...)` list Loupe sends,
# well under SQLite's limit on query variables.
BATCH_SIZE = 500
# Ranged GETs of image headers are latency-bound: a few in flight hide the round trips without
# hammering the bucket.
HEADER_READERS = 8
# Where a browser upload waits for its ImportRun: one folder per run, deleted by the run.
STAGING_PREFIX = "staging/uploads/"


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    rejected: list = field(default_factory=list)  # [(name, reason)]

    @property
    def total(self):
        return self.imported + self.duplicates + len(self.rejected)

    def summary(self):
        return (
            f"{self.imported} imported, {self.duplicates} skipped as duplicates, "
            f"{len(self.rejected)} rejected"
        )


class ImportSourceError(Exception):
    """The source itself cannot be read (missing folder, S3 access denied, ...)."""


EXIF_ORIENTATION = 0x0112
# What each EXIF orientation asks a viewer to do with the stored pixels.
ORIENTATIONS = {
    2: "mirrored", 3: "rotated 180°", 4: "flipped upside down", 5: "mirrored and rotated 90°",
    6: "rotated 90° clockwise", 7: "mirrored and rotated 90°", 8: "rotated 90° counter-clockwise",
}


BOMB_REASON = ("too many pixels to open safely (a possible decompression bomb); Rekognition accepts at "
               f"most {MAX_SIDE}x{MAX_SIDE} px")


@dataclass(frozen=True)
class ImageHeader:
    width: int
    height: int
    format: str
    depth: int
    orientation: int = UPRIGHT


def read_header(head):
    """Image facts from the first bytes of a file; raises ValueError with a reason."""
    try:
        with PILImage.open(io.BytesIO(head)) as picture:
            fmt = picture.format
            width, height = picture.size
            depth = len(picture.getbands())
            orientation = _orientation(picture)
    except UnidentifiedImageError:
        raise ValueError("not an image Pillow can read") from None
    except PILImage.DecompressionBombError:
        # A few KB claiming hundreds of millions of pixels: refused like any other bad file.
        raise ValueError(BOMB_REASON) from None
    except (OSError, SyntaxError) as error:
        raise ValueError(f"unreadable image ({error})") from None
    # Rekognition reads greyscale as one channel; the manifest's depth says what the file holds.
    return ImageHeader(width, height, fmt, 3 if depth >= 3 else depth, orientation)


def _orientation(picture):
    """The EXIF orientation tag (1 when there is none or it cannot be read from the header)."""
    try:
        value = picture.getexif().get(EXIF_ORIENTATION, UPRIGHT)
    except Exception:  # noqa: BLE001 - a broken EXIF block says nothing about orientation
        return UPRIGHT
    return value if isinstance(value, int) else UPRIGHT


def check_limits(header, size):
    """Reason the image breaks Rekognition's limits (or Loupe's one frame), or None."""
    if header.format not in IMAGE_FORMATS:
        return f"format {header.format} is not accepted by Rekognition (use JPEG or PNG)"
    if size > MAX_IMAGE_BYTES:
        return (f"file is {size_text(size)}; Rekognition accepts at most {MAX_IMAGE_BYTES // MB} MB "
                f"({MAX_IMAGE_BYTES:,} bytes)")
    for side, value in (("width", header.width), ("height", header.height)):
        if value < MIN_SIDE:
            return f"{side} {value} px is below Rekognition's minimum of {MIN_SIDE} px"
        if value > MAX_SIDE:
            return f"{side} {value} px is above Rekognition's maximum of {MAX_SIDE} px"
    short, long = sorted((header.width, header.height))
    if long > MAX_ASPECT * short:
        return (f"aspect ratio {long / short:.4g}:1 ({header.width}x{header.height} px) is above "
                f"Rekognition's maximum of {MAX_ASPECT}:1")
    if header.orientation != UPRIGHT:
        how = ORIENTATIONS.get(header.orientation, "transformed")
        return (
            f"EXIF orientation {header.orientation} ({how}): browsers and the detector would show it "
            f"turned while its stored {header.width}x{header.height} px frame is not, so boxes would "
            "land in the wrong place; save the image upright (e.g. 'exiftran -ai' or 'mogrify "
            "-auto-orient') and import it again"
        )
    return None


def header_from_reader(read):
    """read(n) returns the first n bytes; widen the window once when the header is further in."""
    error = None
    for length in HEADER_BYTES:
        head = read(length)
        try:
            return read_header(head)
        except ValueError as exc:
            error = exc
            if len(head) < length:
                break
    raise error


class _Batch:
    """Collects new Image rows and writes them in bulk, skipping sources already imported."""

    def __init__(self, iteration, report):
        self.iteration = iteration
        self.report = report
        self.pending = []
        last = iteration.images.aggregate(last=Max("position"))["last"]
        self.position = 0 if last is None else last + 1

    def known(self, sources):
        """The given sources the iteration already has, asked BATCH_SIZE at a time."""
        sources, found = list(sources), set()
        for start in range(0, len(sources), BATCH_SIZE):
            chunk = sources[start:start + BATCH_SIZE]
            found.update(self.iteration.images.filter(source__in=chunk).values_list("source", flat=True))
        return found

    def add(self, **fields):
        self.pending.append(Image(iteration=self.iteration, position=self.position, **fields))
        self.position += 1
        if len(self.pending) >= BATCH_SIZE:
            self.flush()

    def flush(self):
        """Insert the pending rows; a row another import created meanwhile counts as a duplicate.

        Conflicts only arise when two imports of the same files overlap, so the fast path inserts
        the whole batch at once; on a conflict the batch is inserted row by row to count exactly
        what was created (bulk_create(ignore_conflicts=True) cannot say which rows it skipped).
        """
        if not self.pending:
            return
        try:
            with transaction.atomic():
                Image.objects.bulk_create(self.pending)
            self.report.imported += len(self.pending)
        except IntegrityError:
            for image in self.pending:
                self._insert_one(image)
        self.pending = []

    def _insert_one(self, image):
        image.pk = None
        try:
            with transaction.atomic():
                image.save(force_insert=True)
        except IntegrityError:
            if not self.iteration.images.filter(source=image.source).exists():
                raise
            self.report.duplicates += 1
        else:
            self.report.imported += 1


def import_s3_prefix(*, iteration, uri, progress=None, report=None):
    """Register every JPEG/PNG under s3://bucket/prefix/ in place (the image stays in S3).

    The listing is processed BATCH_SIZE keys at a time as S3 pages it in, so memory and every
    query stay bounded whatever the prefix holds. progress(done, total) counts the keys listed so
    far: S3 does not say how many there are before the last page. report: an ImportReport to fill
    in, so a caller still has the counts when the import fails part way.
    """
    location = s3.parse_s3_uri(uri)
    problem = bucket_problem(location.bucket)
    if problem:
        raise ImportSourceError(problem)
    region = iteration.project.region or None
    # Checked once here rather than by Rekognition failing on every image of a foreign bucket.
    problem = bucket_mismatch(location.bucket, s3.bucket_region(location.bucket, region=region),
                              iteration.project.region)
    if problem:
        raise ImportSourceError(f"cannot import {uri}: {problem}")
    report = ImportReport() if report is None else report
    batch = _Batch(iteration, report)
    listing = s3.iter_objects(location.bucket, location.key, region=region)
    done = 0
    with ThreadPoolExecutor(max_workers=HEADER_READERS, thread_name_prefix="s3-headers") as readers:
        while True:
            try:
                keys = list(islice(listing, BATCH_SIZE))
            except s3.S3Error as error:
                batch.flush()
                raise ImportSourceError(_listing_failed(uri, error, report)) from error
            if not keys:
                break
            _import_s3_keys(batch, readers, location.bucket, keys, region)
            done += len(keys)
            if progress:
                progress(done, done)
    batch.flush()
    return report


def _listing_failed(uri, error, report):
    message = f"cannot list {uri}: {error}"
    if report.imported:
        message += f" ({report.imported} images were imported before; import again to continue)"
    return message


def _import_s3_keys(batch, readers, bucket, keys, region):
    """One batch of listed (key, size): reject non-images, skip known sources, read the rest's
    headers concurrently, and add them in listing order (positions follow the keys)."""
    report = batch.report
    candidates = []
    for key, size in keys:
        if key.endswith("/"):
            continue
        if Path(key).suffix.lower() not in IMAGE_EXTENSIONS:
            report.rejected.append((key, "not a .jpg, .jpeg or .png file"))
            continue
        candidates.append((key, size))
    known = batch.known(f"s3://{bucket}/{key}" for key, _ in candidates)
    new = []
    for key, size in candidates:
        if f"s3://{bucket}/{key}" in known:
            report.duplicates += 1
        else:
            new.append((key, size))
    headers = readers.map(lambda item: _s3_header(bucket, item[0], region), new)
    for (key, size), header in zip(new, headers, strict=True):
        reason = header if isinstance(header, str) else check_limits(header, size)
        if reason:
            report.rejected.append((key, reason))
            continue
        batch.add(
            source=f"s3://{bucket}/{key}", name=os.path.basename(key)[:255], width=header.width,
            height=header.height, depth=header.depth, file_size=size, format=header.format,
        )


def _s3_header(bucket, key, region):
    """The object's ImageHeader, or the reason it has none. Runs on a reader thread: no database."""
    try:
        return header_from_reader(lambda n: s3.read_range(bucket, key, n, region=region))
    except (ValueError, s3.S3Error) as error:
        return str(error)


def import_folder(*, iteration, folder, progress=None, report=None):
    folder = Path(folder)
    if not folder.is_dir():
        raise ImportSourceError(f"{folder} is not a folder")
    paths = sorted(p for p in folder.rglob("*") if p.is_file())
    files = [(str(p.relative_to(folder)), p) for p in paths]
    return import_files(iteration=iteration, files=files, progress=progress, report=report)


def import_files(*, iteration, files, progress=None, report=None, open_file=None):
    """files: (name, item) pairs; each image is copied into Loupe's storage.

    An item is a path or a file object, or anything open_file(item) opens as a context manager
    (one file open at a time, however many there are). The storage name is derived from the
    iteration and the file's name, so importing the same file again is recognised as a duplicate.
    If the import fails part way, the files it stored for rows not yet written are deleted again:
    what is reported imported is exactly what has a row and a file.
    """
    # Imported here: projects.manifests.export imports projects.manifests.checks, which imports this module.
    from projects.manifests.export import storage_prefix

    report = ImportReport() if report is None else report
    batch = _Batch(iteration, report)
    prefix = storage_prefix(iteration)
    names = {name: prefix + name.replace("\\", "/") for name, _ in files}
    known = batch.known(names.values())
    try:
        for done, (name, item) in enumerate(files, start=1):
            source = names[name]
            if source in known:
                report.duplicates += 1
            elif Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                report.rejected.append((name, "not a .jpg, .jpeg or .png file"))
            else:
                with (open_file or _opened)(item) as handle:
                    _import_local_file(batch, name, source, handle, report)
            known.add(source)
            if progress:
                progress(done, len(files))
        batch.flush()
    except BaseException:
        _delete_unregistered(iteration, [image.source for image in batch.pending])
        raise
    return report


def _opened(item):
    return open(item, "rb") if isinstance(item, (str, Path)) else nullcontext(item)


def _delete_unregistered(iteration, names):
    registered = set(iteration.images.filter(source__in=names).values_list("source", flat=True))
    for name in names:
        if name not in registered:
            default_storage.delete(name)


def _import_local_file(batch, name, source, handle, report):
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    try:
        header = header_from_reader(lambda n: _read_start(handle, n))
    except ValueError as error:
        report.rejected.append((name, str(error)))
        return
    reason = check_limits(header, size)
    if reason:
        report.rejected.append((name, reason))
        return
    handle.seek(0)
    stored = _store(source, handle)
    batch.add(
        source=stored, name=os.path.basename(name)[:255], width=header.width,
        height=header.height, depth=header.depth, file_size=size, format=header.format,
    )


def _read_start(handle, length):
    handle.seek(0)
    return handle.read(length)


def _store(name, handle):
    # An earlier, interrupted import may have left the file without its row: reuse it.
    if default_storage.exists(name):
        default_storage.delete(name)
    return default_storage.save(name, File(handle))


def import_source(*, iteration, source, progress=None, report=None):
    if source.startswith("s3://"):
        return import_s3_prefix(iteration=iteration, uri=source, progress=progress, report=report)
    return import_folder(iteration=iteration, folder=source, progress=progress, report=report)


# --- as a recorded background run ----------------------------------------------------------------

# What an import can meet and the page can explain: shown as is, not raised to the worker.
SOURCE_FAILURES = (ImportSourceError, s3.S3Error)


def stage_upload(*, iteration, files, user=None):
    """Store uploaded files under the staging prefix and record the queued ImportRun importing them.

    files: (name, file object) pairs. Raises ImportSourceError (the run recorded as failed, nothing
    left staged) when the storage refuses them.
    """
    count = len(files)
    run = ImportRun.objects.create(
        iteration=iteration, source=f"upload of {count} file{'' if count == 1 else 's'}", created_by=user,
    )
    staged = []
    with lifecycle.failing(run, plain=SOURCE_FAILURES):
        try:
            for index, (name, handle) in enumerate(files):
                stored = default_storage.save(f"{STAGING_PREFIX}{run.pk}/{index:05d}", File(handle))
                staged.append([name, stored])
                # Storing a thousand files in S3 can outlast the stale interval: not dead yet.
                lifecycle.heartbeat(run)
        except BaseException as error:
            run.staged_files = staged
            run.discard_staged_files()
            if isinstance(error, OSError):
                raise ImportSourceError(
                    f"the uploaded files could not be stored ({error}): upload them again, or ask "
                    "the administrator to check Loupe's storage"
                ) from error
            raise
    run.staged_files = staged
    run.save(update_fields=["staged_files"])
    return run


def run_import(*, run):
    """Carry out an ImportRun (an S3 prefix or a staged upload) and record how it went.

    Whatever happens, the run reports what was imported before it ended, and a staged upload's
    files are deleted: the rows and stored images are what the report says.
    """
    lifecycle.begin(run)
    report = ImportReport()
    try:
        with lifecycle.failing(run, plain=SOURCE_FAILURES, fields=lambda error: _counts(report)):
            _import(run, report, progress=lambda done, total: lifecycle.heartbeat(run, **_counts(report)))
    except SOURCE_FAILURES:
        return run
    finally:
        run.discard_staged_files()
    return lifecycle.finish(run, RunStatus.SUCCEEDED, **_counts(report))


def _import(run, report, progress):
    if run.staged_files:
        import_files(
            iteration=run.iteration, files=run.staged_files, report=report, progress=progress,
            open_file=lambda name: default_storage.open(name, "rb"),
        )
    else:
        import_source(iteration=run.iteration, source=run.source, report=report, progress=progress)


def _counts(report):
    return {
        "imported": report.imported, "duplicates": report.duplicates,
        "rejected_count": len(report.rejected),
        "rejected": [list(item) for item in report.rejected[: ImportRun.REJECTED_KEPT]],
    }
