"""Rekognition Custom Labels' limits, as Loupe enforces them.

Every module that checks an image, a box or a manifest reads its limits here, so that one number
is changed in one place. This module imports nothing from the project. Where each limit comes from
(the AWS page): docs/rekognition-rules.md. Sizes are AWS's decimal megabytes (1 MB = 1,000,000
bytes), the safe side wherever a page leaves the unit open.
"""

# The image files Rekognition Custom Labels reads, by suffix and by Pillow's format name.
FORMAT_BY_SUFFIX = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
IMAGE_EXTENSIONS = frozenset(FORMAT_BY_SUFFIX)
IMAGE_FORMATS = frozenset(FORMAT_BY_SUFFIX.values())

# Images for training and detection: pixels per side, and the file size.
MIN_SIDE = 64
MAX_SIDE = 4096
MB = 1_000_000
MAX_IMAGE_BYTES = 15 * MB
MAX_ASPECT = 20
# DetectCustomLabels refuses raw bytes of 4 MB or more; images in S3 go by reference instead.
MAX_DETECT_BYTES = 4 * MB
# The only EXIF orientation Loupe imports: the stored pixels are the frame everyone draws.
UPRIGHT = 1

# Manifests.
MAX_MANIFEST_BYTES = 1_000 * MB  # 1 GB
MAX_LINES = 250_000
# Rekognition's quotas page allows one label for object detection (one error page says two).
MIN_LABELS = 1
MAX_LABELS = 250
MAX_LABEL_NAME = 255
MAX_BOXES = 50
# Rekognition scales images to this long side before it drops boxes of 1 px or less.
SCALED_SIDE = 1280
MAX_INVALID_FRACTION = 0.2
# Images per dataset in regions with lower quotas: {region: (training images, test images)}.
REGIONAL_MAX_IMAGES = {"ap-south-1": (28_000, 7_000), "eu-west-2": (28_000, 7_000)}
MAX_TEST_IMAGES_PER_LABEL = 1_000
MIN_TEST_COVERAGE = 0.5


def size_text(size):
    """A byte count in AWS's megabytes, e.g. '15.2 MB'."""
    return f"{size / MB:.1f} MB"
