"""Benchmark: manifest export time and peak memory at 10k, 100k and 250k reviewed images.

Builds N images with 5 boxes each in a throwaway database (a temporary SQLite file by default;
with --database-url postgres://..., a temporary database created on that server and dropped at
the end), then exports the manifest to a temporary file the way `manage.py export_manifest` does
(validation included). Each size is timed several times without tracing (median reported); peak
Python memory comes from one extra run under tracemalloc. The last line printed is one JSON object
with all the figures.

    .venv/bin/python bench/export.py [--sizes 10000,100000,250000] [--repeat 3]
                                     [--database-url postgres://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import tracemalloc

from benchdb import scratch_database, setup_django

BOXES_PER_IMAGE = 5
BATCH = 5000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,250000",
                        help="comma-separated image counts, ascending (default 10000,100000,250000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size (default 3)")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server to create the throwaway database on")
    return parser.parse_args()


def grow(iteration, labels, start, stop):
    """Add reviewed images start..stop-1 to the iteration, each with 5 boxes."""
    from django.db import transaction
    from django.utils import timezone

    from projects.models import Image
    from reviewer.models import Box

    reviewed_at = timezone.now()
    for first in range(start, stop, BATCH):
        last = min(first + BATCH, stop)
        with transaction.atomic():
            images = Image.objects.bulk_create(
                Image(iteration=iteration, source=f"s3://bench-bucket/images/img-{n:07d}.jpg",
                      name=f"img-{n:07d}.jpg", width=1024, height=768, position=n,
                      status=Image.Status.REVIEWED, reviewed_at=reviewed_at, file_size=250_000)
                for n in range(first, last)
            )
            Box.objects.bulk_create(
                Box(image=image, label=labels[k % len(labels)], left=10.4 + 100 * k, top=20.6 + 50 * k,
                    width=90.5, height=40.25, origin=Box.Origin.ACCEPTED)
                for image in images for k in range(BOXES_PER_IMAGE)
            )


def export_once(iteration, *, trace):
    from projects.manifests.export import write_manifest

    with tempfile.NamedTemporaryFile("w", suffix=".manifest", encoding="utf-8") as out:
        if trace:
            tracemalloc.start()
        started, cpu_started = time.perf_counter(), time.process_time()
        result = write_manifest(iteration=iteration, out=out)
        out.flush()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
        return elapsed, cpu, peak, result


def measure(iteration, size, repeat):
    import resource

    times, cpu_times = [], []
    result = None
    for _ in range(repeat):
        elapsed, cpu, _, result = export_once(iteration, trace=False)
        times.append(elapsed)
        cpu_times.append(cpu)
    _, _, peak, _ = export_once(iteration, trace=True)
    assert result.lines == size, f"exported {result.lines} lines for {size} images"
    return {
        "images": size,
        "boxes": size * BOXES_PER_IMAGE,
        "seconds_median": round(statistics.median(times), 3),
        "seconds_runs": [round(t, 3) for t in times],
        # This process's CPU time: what the export costs when other work shares the cores.
        "cpu_seconds_median": round(statistics.median(cpu_times), 3),
        "lines_per_second": round(size / statistics.median(times)),
        "manifest_mb": round(result.bytes / 1e6, 1),
        "peak_traced_mb": round(peak / 1e6, 2),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "report_ok": result.report.ok,
    }


def print_table(rows, backend):
    print(f"Manifest export benchmark ({backend}, {BOXES_PER_IMAGE} boxes per image, median of runs)")
    header = f"{'images':>8} {'boxes':>9} {'seconds':>8} {'cpu s':>7} {'lines/s':>9} {'file MB':>8} " \
             f"{'peak MB':>8} {'RSS MB':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['images']:>8} {row['boxes']:>9} {row['seconds_median']:>8.2f} "
              f"{row['cpu_seconds_median']:>7.2f} {row['lines_per_second']:>9} {row['manifest_mb']:>8.1f} "
              f"{row['peak_traced_mb']:>8.2f} {row['max_rss_mb']:>8.1f}")
    print("seconds: wall clock, validation and file writing included; cpu s: this process's CPU time;")
    print("peak MB: Python allocations during one export (tracemalloc); RSS MB: process high-water mark,"
          " including building the data.")


def run(args, database_url, backend):
    setup_django(database_url)
    from projects.models import Image
    from projects.provisioning import create_iteration, create_project

    project = create_project(slug="bench", name="Bench", labels=["aws-logo", "smile-logo", "other"])
    iteration = create_iteration(project=project, name="v2")
    labels = list(project.labels.order_by("order"))
    sizes = sorted(int(size) for size in args.sizes.split(","))
    rows = []
    have = 0
    for size in sizes:
        started = time.perf_counter()
        grow(iteration, labels, have, size)
        have = size
        print(f"built {size} images in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        assert Image.objects.filter(iteration=iteration).count() == size
        rows.append(measure(iteration, size, args.repeat))
    print_table(rows, backend)
    print(json.dumps({"backend": backend, "boxes_per_image": BOXES_PER_IMAGE, "results": rows}))


def main():
    args = parse_args()
    with scratch_database(args.database_url) as (url, backend):
        run(args, url, backend)


if __name__ == "__main__":
    main()
