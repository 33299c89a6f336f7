"""Rekognition Custom Labels' limits, as Loupe enforces them.

Every module that checks an image, a box or a manifest reads its limits here, so that one number
is changed in one place. This module imports nothing from the project.
"""

# The image files Rekognition Custom Labels reads, by suffix and by Pillow's format name.
FORMAT_BY_SUFFIX = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
IMAGE_EXTENSIONS = frozenset(FORMAT_BY_SUFFIX)
IMAGE_FORMATS = frozenset(FORMAT_BY_SUFFIX.values())

# Images for training and detection: pixels per side, and the file size.
MIN_SIDE = 64
MAX_SIDE = 4096
MAX_IMAGE_BYTES = 15 * 1024 * 1024
MAX_ASPECT = 20
# DetectCustomLabels refuses raw bytes of 4 MB or more; images in S3 go by reference instead.
MAX_DETECT_BYTES = 4 * 1024 * 1024

# Manifests.
MAX_MANIFEST_BYTES = 1_000_000_000
MAX_LINES = 250_000
MAX_LINE_CHARS = 100_000
MIN_LABELS = 2
MAX_LABELS = 250
MAX_LABEL_NAME = 255
MAX_BOXES = 50
# Rekognition scales images to this long side before it drops boxes of 1 px or less.
SCALED_SIDE = 1280
MAX_INVALID_FRACTION = 0.2
