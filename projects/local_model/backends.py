"""The offline detectors Loupe can learn, behind one shape: decode(bytes) -> pixels,
learn([(pixels, truth)]) -> model, detect(pixels, model) -> [Detection], and each model's
to_bytes(). Loads OpenCV (and dlib): only workers, commands and benches import it."""

from types import SimpleNamespace

from projects.local_model import detector, trained

TEMPLATE = SimpleNamespace(
    NAME="template", decode=detector.decode_grey, learn=detector.learn, detect=detector.detect_grey,
)
TRAINED = SimpleNamespace(NAME="trained", decode=trained.decode, learn=trained.learn, detect=trained.detect)

BACKENDS = {"template": TEMPLATE, "trained": TRAINED}
DEFAULT = "trained"


def for_model(model):
    return TRAINED if isinstance(model, trained.HogModel) else TEMPLATE
