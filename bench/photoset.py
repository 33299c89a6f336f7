"""A detection set nobody in the project designed the detector for: real photographs as backgrounds
(scikit-image's sample photographs, shipped in its wheel, nothing downloaded) and two marks unlike
the demo's, a ring-and-bar emblem and a chevron badge, drawn here in several colour schemes and
placed with scale, rotation, perspective, occlusion, lighting, blur and JPEG compression.

photo_set(seed) -> {"v1": [...8], "v2": [...30], "test": [...40]}, each item (bgr uint8, truth)
with truth [(label, (left, top, width, height))].
"""

import math
import os

import cv2
import numpy as np

LABELS = ("ring-emblem", "chevron-badge")
SIZES = {"v1": 8, "v2": 30, "test": 40}
# Grey or colour photographs in skimage/data that need no download.
PHOTOS = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg",
          "motorcycle_left.png", "brick.png", "grass.png", "gravel.png", "moon.png", "coins.png",
          "page.png", "text.png", "hubble_deep_field.jpg", "retina.jpg", "clock_motion.png")
FRAMES = ((1024, 768), (1024, 683), (800, 600), (768, 1024), (1024, 576))
SCHEMES = (  # (primary, secondary) BGR
    ((40, 40, 200), (230, 230, 230)), ((160, 60, 20), (20, 200, 240)), ((30, 30, 30), (250, 250, 250)),
    ((40, 150, 40), (240, 240, 240)), ((200, 200, 200), (120, 30, 120)), ((20, 110, 230), (60, 30, 10)),
)
SIDE_RANGE = {"ring-emblem": (44, 210), "chevron-badge": (40, 190)}

_photos = None


def photos():
    global _photos
    if _photos is None:
        import skimage.data

        folder = os.path.dirname(skimage.data.__file__)
        loaded = []
        for name in PHOTOS:
            pixels = cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR)
            if pixels is not None and min(pixels.shape[:2]) >= 300:
                loaded.append(pixels)
        _photos = loaded
    return _photos


def ring_emblem(scheme, style):
    """A ring crossed by a bar (a roundel): 200 x 200 patch and its alpha."""
    primary, secondary = scheme
    size = 200
    colour = np.zeros((size, size, 3), np.uint8)
    alpha = np.zeros((size, size), np.uint8)
    thickness = 26 if style % 2 == 0 else 36
    cv2.circle(colour, (100, 100), 80, primary, thickness, cv2.LINE_AA)
    cv2.circle(alpha, (100, 100), 80, 255, thickness, cv2.LINE_AA)
    if style >= 2:  # filled centre
        cv2.circle(colour, (100, 100), 80 - thickness // 2, secondary, -1, cv2.LINE_AA)
        cv2.circle(alpha, (100, 100), 80 - thickness // 2, 255, -1, cv2.LINE_AA)
    cv2.rectangle(colour, (4, 84), (196, 116), secondary if style < 2 else primary, -1)
    cv2.rectangle(alpha, (4, 84), (196, 116), 255, -1)
    cv2.rectangle(colour, (4, 84), (196, 116), primary if style < 2 else secondary, 4)
    return colour, alpha


def chevron_badge(scheme, style):
    """A shield-shaped badge with two chevrons: 160 x 200 (w x h) patch and its alpha."""
    primary, secondary = scheme
    width, height = 160, 200
    colour = np.zeros((height, width, 3), np.uint8)
    alpha = np.zeros((height, width), np.uint8)
    shield = np.array([[6, 6], [154, 6], [154, 120], [80, 194], [6, 120]], np.int32)
    cv2.fillPoly(colour, [shield], primary, cv2.LINE_AA)
    cv2.fillPoly(alpha, [shield], 255, cv2.LINE_AA)
    for top in ((40, 95) if style % 2 == 0 else (30, 70, 110)):
        chevron = np.array([[24, top], [80, top + 40], [136, top], [136, top + 24], [80, top + 64],
                            [24, top + 24]], np.int32)
        cv2.fillPoly(colour, [chevron], secondary, cv2.LINE_AA)
    if style >= 2:
        cv2.polylines(colour, [shield], True, secondary, 6, cv2.LINE_AA)
    return colour, alpha


MARKS = {"ring-emblem": ring_emblem, "chevron-badge": chevron_badge}


def warp_mark(rng, colour, alpha, long_side):
    """Scale, rotate (+-20 deg) and tilt in perspective; returns the warped patch and alpha."""
    height, width = alpha.shape
    scale = long_side / max(height, width)
    angle = math.radians(rng.uniform(-20, 20))
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    centred = (corners - [width / 2, height / 2]) * scale
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = centred @ rotation.T
    tilt = rng.uniform(-0.12, 0.12, size=(4, 2)) * long_side
    moved = (moved + tilt).astype(np.float32)
    moved -= moved.min(axis=0)
    out_w, out_h = int(math.ceil(moved[:, 0].max())) + 2, int(math.ceil(moved[:, 1].max())) + 2
    matrix = cv2.getPerspectiveTransform(corners, moved)
    return (cv2.warpPerspective(colour, matrix, (out_w, out_h), flags=cv2.INTER_AREA),
            cv2.warpPerspective(alpha, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR))


def background(rng, width, height):
    photo = photos()[int(rng.integers(len(photos())))]
    ph, pw = photo.shape[:2]
    crop_scale = rng.uniform(0.6, 1.0)
    cw, ch = int(pw * crop_scale), int(ph * crop_scale)
    # keep the frame's aspect inside the crop
    if cw / ch > width / height:
        cw = int(ch * width / height)
    else:
        ch = int(cw * height / width)
    left, top = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
    crop = photo[top:top + ch, left:left + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def render(rng):
    width, height = FRAMES[int(rng.integers(len(FRAMES)))]
    canvas = background(rng, width, height)
    count = int(rng.choice([0, 1, 1, 2, 2, 3]))
    truth, taken = [], []
    for _ in range(count):
        label = LABELS[int(rng.integers(len(LABELS)))]
        smallest, largest = SIDE_RANGE[label]
        long_side = float(math.exp(rng.uniform(math.log(smallest), math.log(largest))))
        scheme = SCHEMES[int(rng.integers(len(SCHEMES)))]
        colour, alpha = MARKS[label](scheme, int(rng.integers(4)))
        colour, alpha = warp_mark(rng, colour, alpha, long_side)
        ah, aw = alpha.shape
        if aw >= width - 4 or ah >= height - 4:
            continue
        for _attempt in range(20):
            left, top = int(rng.integers(2, width - aw - 2)), int(rng.integers(2, height - ah - 2))
            box = (left, top, aw, ah)
            if all(_apart(box, other) for other in taken):
                break
        else:
            continue
        ys, xs = np.nonzero(alpha > 64)
        if len(xs) == 0:
            continue
        gain = rng.uniform(0.7, 1.2)
        a = (alpha.astype(np.float32) / 255.0)[..., None]
        region = canvas[top:top + ah, left:left + aw]
        canvas[top:top + ah, left:left + aw] = region * (1 - a) + colour.astype(np.float32) * gain * a
        box = (float(left + xs.min()), float(top + ys.min()), float(xs.max() - xs.min() + 1),
               float(ys.max() - ys.min() + 1))
        taken.append(box)
        truth.append((label, box))
        if rng.random() < 0.3:  # occlusion: a photo-coloured block over up to a third of the mark
            bx, by, bw, bh = box
            ow, oh = bw * rng.uniform(0.2, 0.45), bh * rng.uniform(0.2, 0.6)
            ox = bx + (0 if rng.random() < 0.5 else bw - ow)
            oy = by + rng.uniform(0, bh - oh)
            shade = rng.uniform(0, 255, 3)
            canvas[int(oy):int(oy + oh), int(ox):int(ox + ow)] = shade
    # lighting: a linear gradient of gain, and a colour cast
    gx = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(1.0, 1.3), width, dtype=np.float32)
    gy = np.linspace(rng.uniform(0.7, 1.0), rng.uniform(1.0, 1.2), height, dtype=np.float32)
    light = gy[:, None] * gx[None, :]
    if rng.random() < 0.5:
        light = light[:, ::-1]
    cast = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    canvas = canvas * light[..., None] * cast
    canvas = np.clip(canvas + rng.normal(0, 4, canvas.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        sigma = rng.uniform(0.5, 2.0)
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    quality = int(rng.integers(35, 90))
    ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return data.tobytes(), truth


def _apart(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax + aw < bx or bx + bw < ax or ay + ah < by or by + bh < ay


def photo_set(seed):
    """{set name: [(jpeg bytes, truth)]}: the same seed gives the same images."""
    sets = {}
    for number, (name, count) in enumerate(SIZES.items()):
        rng = np.random.default_rng([seed, number])
        sets[name] = [render(rng) for _ in range(count)]
    return sets


if __name__ == "__main__":  # write one seed's images for a look: python bench/photoset.py OUT
    import sys

    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, items in photo_set(int(sys.argv[2]) if len(sys.argv) > 2 else 1).items():
        for index, (data, truth) in enumerate(items):
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            for _label, (x, y, w, h) in truth:
                cv2.rectangle(pixels, (int(x), int(y)), (int(x + w), int(y + h)), (0, 255, 0), 2)
            cv2.imwrite(os.path.join(out, f"{name}-{index:02d}.jpg"), pixels)
