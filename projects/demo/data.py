"""Demo data: two made-up logo marks drawn onto varied backgrounds, with their ground truth.

Everything is derived from one seed, per set and per image, so the same seed gives the same bytes
and boxes, and a reduced set is the first images of the full one. Nothing here is committed as a
binary: `make demo` and `manage.py demo_loop` generate the files under var/.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

LABELS = ("aws-logo", "smile-logo")
DEFAULT_SEED = 20261128
# The three sets of the original workflow: a small labeled set, a larger one to review, a test set.
SET_SIZES = {"v1": 8, "v2": 30, "test": 20}
REDUCED_SET_SIZES = {"v1": 4, "v2": 6, "test": 4}
# Image names are unique across the sets, so one published address serves all of them.
PUBLISHED_IMAGES_URI = "s3://loupe-demo-images/"
LABEL_ATTRIBUTE = "bounding-box"
FRAME_SIZES = ((640, 480), (800, 600), (1024, 768), (768, 576), (960, 720))
NAVY = (62, 47, 35)  # BGR, as everything OpenCV draws
ORANGE = (0, 153, 255)
YELLOW = (0, 210, 255)
DARK = (20, 20, 20)
WORDS = ["north", "sale", "open", "cafe", "route", "data", "cloud", "park", "city", "metro", "news",
         "ticket", "garden", "studio", "market", "harbor", "summit", "plaza", "was", "saw", "swan"]


@dataclass(frozen=True)
class DemoObject:
    label: str
    box: tuple[int, int, int, int]  # left, top, width, height in pixels


@dataclass(frozen=True)
class DemoImage:
    name: str
    width: int
    height: int
    objects: tuple[DemoObject, ...]
    jpeg: bytes


def image_rng(seed, set_name, index):
    return np.random.default_rng([seed, sum(map(ord, set_name)), len(set_name), index])


# -- the marks: RGBA patches at a generous resolution, scaled down when pasted -------------------

def aws_mark(style):
    """A wordmark with a swoosh under it; five styles (colours, badge, frame) that each look
    different in grey, so a model only finds the styles it has seen examples of."""
    patch = np.zeros((130, 240, 4), np.uint8)
    text, swoosh, badge = {
        0: (NAVY, ORANGE, None),
        1: ((255, 255, 255), ORANGE, NAVY),
        2: (NAVY, ORANGE, (255, 255, 255)),
        3: (ORANGE, (255, 255, 255), (20, 20, 20)),
        4: (NAVY, ORANGE, None),
    }[style]
    if badge is not None:
        cv2.rectangle(patch, (2, 2), (237, 127), (*badge, 255), -1, cv2.LINE_AA)
    if style == 4:
        cv2.rectangle(patch, (4, 4), (235, 125), (*ORANGE, 255), 6, cv2.LINE_AA)
    cv2.putText(patch, "aws", (40, 78), cv2.FONT_HERSHEY_DUPLEX, 2.6, (*text, 255), 7, cv2.LINE_AA)
    cv2.ellipse(patch, (118, 86), (82, 22), 0, 15, 165, (*swoosh, 255), 8, cv2.LINE_AA)
    tip = np.array([[196, 84], [178, 108], [206, 104]], np.int32)
    cv2.fillPoly(patch, [tip], (*swoosh, 255), cv2.LINE_AA)
    return patch


def smile_mark(style):
    """A round face with eyes and a smile; five styles (outline, wink, dark face, open mouth)."""
    patch = np.zeros((140, 140, 4), np.uint8)
    face, ink = {3: ((70, 40, 30), YELLOW), 2: ((0, 180, 255), DARK)}.get(style, (YELLOW, DARK))
    cv2.circle(patch, (70, 70), 64, (*face, 255), -1, cv2.LINE_AA)
    if style == 1:
        cv2.circle(patch, (70, 70), 62, (*DARK, 255), 6, cv2.LINE_AA)
    cv2.ellipse(patch, (48, 54), (8, 13), 0, 0, 360, (*ink, 255), -1, cv2.LINE_AA)
    if style == 2:
        cv2.line(patch, (84, 54), (102, 54), (*ink, 255), 5, cv2.LINE_AA)
    else:
        cv2.ellipse(patch, (92, 54), (8, 13), 0, 0, 360, (*ink, 255), -1, cv2.LINE_AA)
    if style == 4:
        cv2.ellipse(patch, (70, 82), (34, 26), 0, 0, 180, (*DARK, 255), -1, cv2.LINE_AA)
        cv2.ellipse(patch, (70, 96), (16, 9), 0, 0, 180, (80, 80, 230, 255), -1, cv2.LINE_AA)
    else:
        cv2.ellipse(patch, (70, 78), (36, 28), 0, 20, 160, (*ink, 255), 7, cv2.LINE_AA)
    return patch


STYLES = 5
MARKS = {"aws-logo": (aws_mark, (70, 250)), "smile-logo": (smile_mark, (48, 170))}


def transform_mark(patch, *, long_side, angle, gain):
    """Scale, rotate (expanding the canvas so nothing is cut) and change the mark's brightness."""
    scale = long_side / max(patch.shape[:2])
    size = (max(2, round(patch.shape[1] * scale)), max(2, round(patch.shape[0] * scale)))
    small = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    out_w, out_h = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
    matrix[0, 2] += out_w / 2 - w / 2
    matrix[1, 2] += out_h / 2 - h / 2
    rotated = cv2.warpAffine(small, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    colour = np.clip(rotated[..., :3].astype(np.float32) * gain, 0, 255)
    return colour, rotated[..., 3].astype(np.float32) / 255.0


# -- backgrounds and clutter ----------------------------------------------------------------------

def random_colour(rng):
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def gradient(rng, width, height):
    a, b = np.array(random_colour(rng), np.float32), np.array(random_colour(rng), np.float32)
    angle = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs * np.cos(angle) + ys * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    return a + (b - a) * t[..., None]


def smooth_noise(rng, width, height, octaves=4):
    """Cloud-like texture from upsampled random grids: reads as foliage, walls, sky."""
    total = np.zeros((height, width, 3), np.float32)
    for octave in range(octaves):
        cells = 3 * 2**octave
        grid = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
        total += cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) / 2**octave
    total /= sum(1 / 2**octave for octave in range(octaves))
    tint = np.array(random_colour(rng), np.float32)
    return np.clip(0.6 * total + 0.4 * tint, 0, 255)


def stripes(rng, width, height):
    base = gradient(rng, width, height)
    period = int(rng.integers(12, 60))
    ys, xs = np.mgrid[0:height, 0:width]
    band = ((xs + ys * rng.uniform(-1, 1)) // period % 2).astype(np.float32)[..., None]
    return np.clip(base * (0.8 + 0.35 * band), 0, 255)


def background(rng, width, height):
    kind = int(rng.integers(0, 3))
    canvas = (gradient, smooth_noise, stripes)[kind](rng, width, height)
    canvas += rng.normal(0, rng.uniform(2, 12), canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def draw_clutter(rng, canvas):
    height, width = canvas.shape[:2]
    for _ in range(int(rng.integers(3, 12))):
        draw_shape(rng, canvas, (0, 0, width, height), max_size=width // 5)
    for _ in range(int(rng.integers(0, 4))):
        words = " ".join(rng.choice(WORDS, int(rng.integers(1, 3))))
        origin = (int(rng.integers(0, width - 60)), int(rng.integers(20, height)))
        font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX,
                               cv2.FONT_HERSHEY_COMPLEX]))
        cv2.putText(canvas, words, origin, font, rng.uniform(0.6, 2.2), random_colour(rng),
                    int(rng.integers(1, 5)), cv2.LINE_AA)


def draw_shape(rng, canvas, area, max_size):
    left, top, width, height = area
    x = int(left + rng.integers(0, max(1, width)))
    y = int(top + rng.integers(0, max(1, height)))
    size = int(rng.integers(6, max(8, max_size)))
    colour = random_colour(rng)
    kind = int(rng.integers(0, 4))
    if kind == 0:
        cv2.circle(canvas, (x, y), size // 2, colour, -1, cv2.LINE_AA)
    elif kind == 1:
        cv2.rectangle(canvas, (x, y), (x + size, y + int(size * rng.uniform(0.3, 1.2))), colour, -1)
    elif kind == 2:
        end = (x + int(rng.integers(-size, size)), y + int(rng.integers(-size, size)))
        cv2.line(canvas, (x, y), end, colour, int(rng.integers(2, 8)), cv2.LINE_AA)
    else:
        points = rng.integers(-size, size, (3, 2)) + np.array([x, y])
        cv2.fillPoly(canvas, [points.astype(np.int32)], colour, cv2.LINE_AA)


# -- one image -------------------------------------------------------------------------------------

def place(rng, size, width, height, taken):
    """A free spot for a w x h mark, or None; marks never overlap each other."""
    w, h = size
    if w >= width - 8 or h >= height - 8:
        return None
    for _ in range(40):
        left, top = int(rng.integers(4, width - w - 4)), int(rng.integers(4, height - h - 4))
        box = (left - 6, top - 6, w + 12, h + 12)
        if not any(_overlaps(box, other) for other in taken):
            return left, top
    return None


def _overlaps(a, b):
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def paste(canvas, colour, alpha, left, top):
    h, w = alpha.shape
    region = canvas[top:top + h, left:left + w].astype(np.float32)
    blended = region * (1 - alpha[..., None]) + colour * alpha[..., None]
    canvas[top:top + h, left:left + w] = np.clip(blended, 0, 255).astype(np.uint8)


def visible_box(alpha, left, top):
    ys, xs = np.nonzero(alpha > 0.25)
    return (left + int(xs.min()), top + int(ys.min()),
            int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1)


def render_image(rng):
    """(BGR pixels, objects): a cluttered frame with one to three marks, some occluded or blurred."""
    width, height = FRAME_SIZES[int(rng.integers(0, len(FRAME_SIZES)))]
    canvas = background(rng, width, height)
    draw_clutter(rng, canvas)
    objects, taken = [], []
    for _ in range(int(rng.integers(1, 4))):
        label = LABELS[int(rng.integers(0, len(LABELS)))]
        draw, (smallest, largest) = MARKS[label]
        long_side = int(np.exp(rng.uniform(np.log(smallest), np.log(largest))))
        colour, alpha = transform_mark(
            draw(int(rng.integers(0, STYLES))), long_side=long_side,
            angle=rng.uniform(-22, 22), gain=rng.uniform(0.7, 1.15),
        )
        spot = place(rng, (alpha.shape[1], alpha.shape[0]), width, height, taken)
        if spot is None:
            continue
        paste(canvas, colour, alpha, *spot)
        box = visible_box(alpha, *spot)
        taken.append(box)
        objects.append(DemoObject(label, box))
        if rng.uniform() < 0.3:
            occlude(rng, canvas, box)
    if rng.uniform() < 0.35:
        sigma = rng.uniform(0.6, 1.8)
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    return canvas, tuple(objects)


def occlude(rng, canvas, box):
    """Cover part of a mark (a corner or an edge), as a cup or a hand would."""
    left, top, width, height = box
    cover_w, cover_h = int(width * rng.uniform(0.2, 0.45)), int(height * rng.uniform(0.2, 0.5))
    x = left + (0 if rng.uniform() < 0.5 else width - cover_w)
    y = top + (0 if rng.uniform() < 0.5 else height - cover_h)
    cv2.rectangle(canvas, (x, y), (x + cover_w, y + cover_h), random_colour(rng), -1)


def demo_image(seed, set_name, index):
    rng = image_rng(seed, set_name, index)
    pixels, objects = render_image(rng)
    quality = int(rng.integers(80, 94))
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    height, width = pixels.shape[:2]
    return DemoImage(f"{set_name}-{index + 1:04d}.jpg", width, height, objects, encoded.tobytes())


# -- sets on disk and their manifest ---------------------------------------------------------------

def manifest_line(image, *, source_ref, job_name, created):
    class_ids = {label: number for number, label in enumerate(LABELS)}
    return {
        "source-ref": source_ref,
        LABEL_ATTRIBUTE: {
            "image_size": [{"width": image.width, "height": image.height, "depth": 3}],
            "annotations": [
                {"class_id": class_ids[obj.label], "left": obj.box[0], "top": obj.box[1],
                 "width": obj.box[2], "height": obj.box[3]}
                for obj in image.objects
            ],
        },
        f"{LABEL_ATTRIBUTE}-metadata": {
            "objects": [{"confidence": 1} for _ in image.objects],
            "class-map": {str(number): label for label, number in class_ids.items()},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": created,
            "job-name": job_name,
        },
    }


def source_ref(image_name):
    """Where the image would live once copied to S3: the project's published images address plus
    its name, which is how Loupe's manifest importer finds the locally stored copy."""
    return f"{PUBLISHED_IMAGES_URI}{image_name}"


def write_set(*, folder, set_name, count, seed=DEFAULT_SEED, created=None):
    """Writes <folder>/<set>/images/*.jpg and <folder>/<set>/<set>.manifest; returns the images.

    Files already holding the right bytes are left alone, so a second run does not touch them.
    """
    images = [demo_image(seed, set_name, index) for index in range(count)]
    target = Path(folder) / set_name
    (target / "images").mkdir(parents=True, exist_ok=True)
    for image in images:
        _write_if_changed(target / "images" / image.name, image.jpeg)
    # A fixed creation date keeps the manifest byte-for-byte reproducible for one seed.
    created = created or datetime(2026, 1, 1, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    lines = [
        json.dumps(manifest_line(image, source_ref=source_ref(image.name),
                                 job_name=f"loupe/demo/{set_name}", created=created))
        for image in images
    ]
    _write_if_changed(manifest_path(folder, set_name), ("\n".join(lines) + "\n").encode())
    return images


def manifest_path(folder, set_name):
    return Path(folder) / set_name / f"{set_name}.manifest"


def images_folder(folder, set_name):
    return Path(folder) / set_name / "images"


def _write_if_changed(path, data):
    if path.exists() and path.read_bytes() == data:
        return
    path.write_bytes(data)


def generate_demo_data(*, folder, seed=DEFAULT_SEED, sizes=None, progress=None):
    """All three sets; returns {set name: [DemoImage]}."""
    sizes = sizes or SET_SIZES
    sets = {}
    for done, (set_name, count) in enumerate(sizes.items(), start=1):
        sets[set_name] = write_set(folder=folder, set_name=set_name, count=count, seed=seed)
        if progress:
            progress(done, len(sizes))
    return sets
