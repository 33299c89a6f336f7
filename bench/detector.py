"""Benchmark: Loupe's offline detector on the demo data, no database involved.

- train: seconds to learn exemplars from the demo's v1 (8 images) and v1+v2 (38 images);
- detect: seconds per image on the test set's 1024 x 768 images, median of --repeat passes, for each
  model (the brief: under 1 s per 1024 px image on one CPU core pair);
- f1: each model's F1 on the test set at the thresholds that maximise it (what train_local stores).

The last line printed is one JSON object with the figures.

    .venv/bin/python bench/detector.py [--seed 20261128] [--repeat 3]
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")

import django  # noqa: E402

django.setup()

from projects.demo import data as demodata  # noqa: E402
from projects.local_model import detector, evaluation  # noqa: E402


def load(seed, set_name):
    images = [demodata.demo_image(seed, set_name, index) for index in range(demodata.SET_SIZES[set_name])]
    return [(image, detector.decode_grey(image.jpeg), [(o.label, o.box) for o in image.objects])
            for image in images]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=demodata.DEFAULT_SEED)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sets = {name: load(args.seed, name) for name in demodata.SET_SIZES}
    large = [grey for image, grey, _ in sets["test"] if image.width == 1024]
    figures = {}
    for name, train in (("v1", sets["v1"]), ("v2", sets["v1"] + sets["v2"])):
        started = time.perf_counter()
        exemplars = detector.learn([(grey, truth) for _, grey, truth in train])
        trained = time.perf_counter() - started
        passes = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            for grey in large:
                detector.detect_grey(grey, exemplars)
            passes.append((time.perf_counter() - started) / len(large))
        matching = evaluation.match_images(
            (truth, detector.detect_grey(grey, exemplars)) for _, grey, truth in sets["test"]
        )
        f1 = matching.f1(evaluation.best_thresholds(matching, demodata.LABELS))
        figures[name] = {"train_images": len(train), "exemplars": len(exemplars.exemplars),
                         "train_s": round(trained, 2), "detect_1024_s": round(statistics.median(passes), 3),
                         "f1": round(f1, 3)}
        print(f"{name}: {len(train)} images -> {len(exemplars.exemplars)} exemplars in {trained:.1f} s; "
              f"{statistics.median(passes):.3f} s per 1024 px image (median of {args.repeat}, "
              f"{len(large)} images); F1 {f1:.3f} on test")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
