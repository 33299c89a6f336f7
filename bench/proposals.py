"""Benchmark: images per second of a proposal run, with fake backends instead of a model.

- instant: a backend that answers at once (two boxes per image), so the figure is Loupe's own
  overhead per image (loading, thread pool hand-off, one transaction writing proposals, outcome and
  queue priority, counters);
- sleep: a backend that sleeps 200 ms per call, like a Rekognition call, at concurrency 1, 8 and 16,
  each sized to take a few seconds; the ideal is concurrency / 0.2 s images per second.

Runs on a throwaway SQLite file by default (or on a temporary database created on the PostgreSQL
server given with --database-url, dropped at the end). Each case is run --repeat times with a fresh
model version and the median is reported. The last line printed is one JSON object with the figures.

    .venv/bin/python bench/proposals.py [--images 2000] [--seconds 3] [--repeat 3]
                                        [--database-url postgres://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import json
import statistics
import sys
import time

from benchdb import scratch_database, setup_django

LATENCY = 0.2
SLEEP_CONCURRENCIES = (1, 8, 16)
INSTANT_CONCURRENCY = 4
TARGET_SHARE = 0.70


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="images for the instant backend")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="ideal duration of each sleeping case (sizes its image count)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server to create the throwaway database on")
    return parser.parse_args()


def make_fake_backend(latency):
    from projects.detections import Detection

    class FakeBackend:
        """Two boxes per image, after `latency` seconds (0: instant)."""

        def detect(self, image):
            if latency:
                time.sleep(latency)
            return [
                Detection("aws-logo", 71.5, (10.0, 20.0, 100.0, 50.0)),
                Detection("smile-logo", 33.0, (200.0, 120.0, 64.0, 64.0)),
            ]

    return FakeBackend()


def make_iteration(project, name, count):
    from projects.models import Image, Iteration

    iteration = Iteration.objects.create(project=project, name=name)
    Image.objects.bulk_create(
        [
            Image(iteration=iteration, source=f"s3://bench/{name}/{n:06d}.jpg", name=f"{n:06d}.jpg",
                  width=1024, height=768, position=n)
            for n in range(count)
        ],
        batch_size=1000,
    )
    return iteration


def time_case(project, iteration, concurrency, latency, repeat):
    from projects.models import ModelVersion, RunStatus
    from projects.proposals.runs import create_proposal_run, run_proposals

    seconds = []
    for attempt in range(repeat):
        model = ModelVersion.objects.create(
            project=project, name=f"{iteration.name}-{attempt}", kind=ModelVersion.Kind.REKOGNITION,
            arn="arn:bench", thresholds=ModelVersion.thresholds_from({
                label.pk: {"aws-logo": 70.0, "smile-logo": 40.0}[label.name] for label in project.labels.all()
            }),
        )
        run = create_proposal_run(iteration=iteration, model_version=model, concurrency=concurrency)
        started = time.perf_counter()
        run = run_proposals(run=run, backend=make_fake_backend(latency))
        seconds.append(time.perf_counter() - started)
        assert run.status == RunStatus.SUCCEEDED and run.done == run.total, (run.status, run.error)
    return statistics.median(seconds)


def run_benchmark(args):
    from projects.provisioning import create_project

    project = create_project(slug="bench", name="Bench", labels=["aws-logo", "smile-logo"])
    cases = [("instant", INSTANT_CONCURRENCY, 0.0, args.images)]
    for concurrency in SLEEP_CONCURRENCIES:
        count = max(int(round(concurrency / LATENCY * args.seconds)), concurrency)
        cases.append((f"sleep-{concurrency}", concurrency, LATENCY, count))
    results = []
    for name, concurrency, latency, count in cases:
        iteration = make_iteration(project, name, count)
        seconds = time_case(project, iteration, concurrency, latency, args.repeat)
        ideal = concurrency / latency if latency else None
        rate = count / seconds
        results.append({
            "case": name, "backend_latency_s": latency, "concurrency": concurrency, "images": count,
            "median_seconds": round(seconds, 3), "images_per_second": round(rate, 1),
            "ideal_images_per_second": ideal,
            "share_of_ideal": round(rate / ideal, 3) if ideal else None,
        })
    return results


def print_table(results, engine):
    print(f"Proposal run throughput ({engine}, median of runs)")
    header = (f"{'case':<10} {'conc':>4} {'images':>7} {'seconds':>8} {'images/s':>9} "
              f"{'ideal':>7} {'share':>6}")
    print(header)
    print("-" * len(header))
    for row in results:
        ideal = f"{row['ideal_images_per_second']:.0f}" if row["ideal_images_per_second"] else "-"
        share = f"{row['share_of_ideal']:.0%}" if row["share_of_ideal"] is not None else "-"
        print(f"{row['case']:<10} {row['concurrency']:>4} {row['images']:>7} {row['median_seconds']:>8.2f} "
              f"{row['images_per_second']:>9.1f} {ideal:>7} {share:>6}")


def main():
    args = parse_args()
    with scratch_database(args.database_url) as (url, engine):
        setup_django(url)
        results = run_benchmark(args)
    print_table(results, engine)
    top = next(row for row in results if row["case"] == f"sleep-{SLEEP_CONCURRENCIES[-1]}")
    meets = top["share_of_ideal"] >= TARGET_SHARE
    print(f"concurrency {top['concurrency']}: {top['share_of_ideal']:.0%} of the ideal "
          f"{top['ideal_images_per_second']:.0f} images/s (target {TARGET_SHARE:.0%}): "
          f"{'met' if meets else 'NOT met'}")
    print(json.dumps({"benchmark": "proposals", "database": engine, "repeat": args.repeat,
                      "results": results, "target_share": TARGET_SHARE, "target_met": meets}))
    return 0 if meets else 1


if __name__ == "__main__":
    sys.exit(main())
