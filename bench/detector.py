"""Benchmark: Loupe's offline detector, no database involved.

On the demo data (as before):
- train: seconds to learn from the demo's v1 (8 images) and v1+v2 (38 images);
- detect: seconds per image on the test set's 1024 x 768 images, median of --repeat passes;
- f1: each model's F1 on the test set at the thresholds that maximise it there.

On a real-photo set (bench/photoset.py: scikit-image's sample photographs as backgrounds, two marks
unlike the demo's), for each of --seeds seeds: v1 learned from 8 images, v2 from 8+30, both scored on
40 held-out images. "honest" figures use thresholds chosen by 2-fold cross-validation on the
training images only (what train_local stores); "tuned" ones thresholds tuned on the test set itself
(how Rekognition reports). train_s includes the cross-validation. Times are wall clock and, *_cpu_s,
CPU seconds of this process (all its threads): on a shared machine the CPU figures are the ones to
compare; on 2 idle cores training wall time is about half its CPU time (dlib trains on 2 threads).

The last line printed is one JSON object with the figures.

    .venv/bin/python bench/detector.py [--backend trained|template] [--seeds 5] [--only demo|photo]
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

import photoset  # noqa: E402

from projects.demo import data as demodata  # noqa: E402
from projects.local_model import backends, evaluation  # noqa: E402


def load_demo(backend, seed, set_name):
    images = [demodata.demo_image(seed, set_name, index) for index in range(demodata.SET_SIZES[set_name])]
    return [(image, backend.decode(image.jpeg), [(o.label, o.box) for o in image.objects])
            for image in images]


def demo(backend, args):
    sets = {name: load_demo(backend, args.seed, name) for name in demodata.SET_SIZES}
    large = [pixels for image, pixels, _ in sets["test"] if image.width == 1024]
    figures = {}
    for name, train in (("v1", sets["v1"]), ("v2", sets["v1"] + sets["v2"])):
        started = time.perf_counter()
        model = backend.learn([(pixels, truth) for _, pixels, truth in train])
        trained = time.perf_counter() - started
        passes = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            for pixels in large:
                backend.detect(pixels, model)
            passes.append((time.perf_counter() - started) / len(large))
        matching = evaluation.match_images(
            (truth, backend.detect(pixels, model)) for _, pixels, truth in sets["test"]
        )
        f1 = matching.f1(evaluation.best_thresholds(matching, demodata.LABELS))
        figures[name] = {"train_images": len(train), "train_s": round(trained, 2),
                         "detect_1024_s": round(statistics.median(passes), 3), "f1": round(f1, 3)}
        print(f"demo {name}: {len(train)} images, learned in {trained:.1f} s; "
              f"{statistics.median(passes):.3f} s per 1024 px image (median of {args.repeat}, "
              f"{len(large)} images); F1 {f1:.3f} on test (thresholds tuned on test)")
    return figures


def photo_run(backend, seed):
    sets = {name: [(backend.decode(data), truth) for data, truth in items]
            for name, items in photoset.photo_set(seed).items()}
    test = sets["test"]
    large = [pixels for pixels, _ in test if max(pixels.shape[:2]) == 1024]
    result = {}
    for name, train in (("v1", sets["v1"]), ("v2", sets["v1"] + sets["v2"])):
        started, cpu = time.perf_counter(), time.process_time()
        validation = evaluation.cross_validated_matching(train, backend.learn, backend.detect)
        model = backend.learn(train)
        trained, trained_cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        detections = [backend.detect(pixels, model) for pixels, _ in test]
        seconds = time.perf_counter() - started
        per_image = seconds / len(test)
        started, cpu = time.perf_counter(), time.process_time()
        for pixels in large:
            backend.detect(pixels, model)
        per_1024 = (time.perf_counter() - started) / max(1, len(large))
        per_1024_cpu = (time.process_time() - cpu) / max(1, len(large))
        matching = evaluation.match_images(
            (truth, found) for (_, truth), found in zip(test, detections, strict=True)
        )
        figures = evaluation.honest_figures(validation, matching, list(photoset.LABELS))
        result[name] = {"f1": figures["f1"], "precision": figures["precision"], "recall": figures["recall"],
                        "f1_tuned": figures["f1_tuned_on_test"],
                        "precision_tuned": figures["precision_tuned_on_test"],
                        "recall_tuned": figures["recall_tuned_on_test"],
                        "train_s": round(trained, 1), "train_cpu_s": round(trained_cpu, 1),
                        "detect_1024_s": round(per_1024, 3), "detect_1024_cpu_s": round(per_1024_cpu, 3),
                        "detect_s": round(per_image, 3)}
    return result


COLUMNS = ("f1", "precision", "recall", "f1_tuned", "precision_tuned", "recall_tuned", "train_s",
           "train_cpu_s", "detect_1024_s", "detect_1024_cpu_s")


def photo(backend, args):
    runs = {}
    header = f"{'seed':>6} {'model':>5} " + " ".join(f"{c:>15}" for c in COLUMNS)
    print(f"real-photo set ({backend.NAME}): v1 on 8 images, v2 on 8+30, 40 held out")
    print(header)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        runs[seed] = photo_run(backend, seed)
        for name, row in runs[seed].items():
            print(f"{seed:>6} {name:>5} " + " ".join(f"{row[c]:>15}" for c in COLUMNS), flush=True)
    means = {name: {c: round(statistics.mean(runs[s][name][c] for s in runs), 3) for c in COLUMNS}
             for name in ("v1", "v2")}
    for name, row in means.items():
        print(f"{'mean':>6} {name:>5} " + " ".join(f"{row[c]:>15}" for c in COLUMNS))
    return {"seeds": list(runs), "mean": means, "runs": runs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(backends.BACKENDS), default=backends.DEFAULT)
    parser.add_argument("--seed", type=int, default=demodata.DEFAULT_SEED)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=1, help="photo seeds run from here on")
    parser.add_argument("--only", choices=("demo", "photo"))
    parser.add_argument("--threads", type=int, help="OpenCV threads (default: all cores)")
    args = parser.parse_args()
    if args.threads:
        import cv2

        cv2.setNumThreads(args.threads)
    backend = backends.BACKENDS[args.backend]
    figures = {"backend": args.backend}
    if args.only != "photo":
        figures["demo"] = demo(backend, args)
    if args.only != "demo":
        figures["photo"] = photo(backend, args)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
