"""Benchmark: manifest and prediction import throughput (250,000 lines x 5 boxes by default).

Writes a Ground Truth manifest of N images with 5 human-annotated boxes each, and one of N
DetectCustomLabels lines with 5 detections each, to temporary files, then in a throwaway database (a
temporary SQLite file by default; with --database-url postgres://..., a temporary database created
on that server and dropped at the end) times:
- import_manifest of the manifest into a new iteration (N new images, 5N reviewed boxes);
- the same manifest imported again (idempotent: every image exists, nothing changes) at --again lines;
- import_predictions of the predictions onto those images (5N proposals, priorities, outcomes);
- a machine-annotated manifest (proposals with queue priority) into another new iteration.
Each is run --repeat times into fresh iterations (median reported). The last line printed is one
JSON object with all the figures.

    .venv/bin/python bench/imports.py [--lines 250000] [--again 20000] [--repeat 1]
                                      [--only truth|again|predictions|machine ...]
                                      [--database-url postgres://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import itertools
import json
import os
import resource
import statistics
import sys
import tempfile
import time

from benchdb import scratch_database, setup_django

BOXES = 5
LABELS = ["aws-logo", "smile-logo", "other"]
IMPORTS = ("truth", "again", "predictions", "machine")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=250_000, help="lines per file (default 250000)")
    parser.add_argument("--again", type=int, default=20_000,
                        help="lines of the idempotent re-import (default 20000)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each (default 1)")
    parser.add_argument("--database-url", "--database", default="",
                        help="a PostgreSQL server to create the throwaway database on")
    parser.add_argument("--only", choices=list(IMPORTS), action="append",
                        help="run only this import (repeatable; 'again' and 'predictions' need 'truth')")
    args = parser.parse_args()
    args.only = set(args.only or IMPORTS)
    if args.only & {"again", "predictions"}:
        args.only.add("truth")
    return args


def manifest_line(n, *, human):
    annotations = [{"class_id": k % len(LABELS), "left": 10 + 100 * k, "top": 20 + 50 * k,
                    "width": 90, "height": 40} for k in range(BOXES)]
    return json.dumps({
        "source-ref": f"s3://bench-bucket/images/img-{n:07d}.jpg",
        "bounding-box": {"image_size": [{"width": 1024, "height": 768, "depth": 3}],
                         "annotations": annotations},
        "bounding-box-metadata": {
            "objects": [{"confidence": round(0.3 + 0.13 * k, 2)} for k in range(BOXES)],
            "class-map": {str(i): name for i, name in enumerate(LABELS)},
            "type": "groundtruth/object-detection", "human-annotated": "yes" if human else "no",
            "creation-date": "2026-11-28T10:15:03.123456",
        },
    })


def prediction_line(n):
    return json.dumps({"source-ref": f"s3://bench-bucket/images/img-{n:07d}.jpg", "CustomLabels": [
        {"Name": LABELS[k % len(LABELS)], "Confidence": 30 + 13 * k,
         "Geometry": {"BoundingBox": {"Left": 0.05 + 0.15 * k, "Top": 0.1, "Width": 0.1, "Height": 0.1}}}
        for k in range(BOXES)
    ]})


def write_file(folder, name, count, make):
    path = f"{folder}/{name}"
    with open(path, "w", encoding="utf-8") as out:
        for n in range(count):
            out.write(make(n) + "\n")
    return path


def timed(function, *args, **kwargs):
    started, cpu_started = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, time.process_time() - cpu_started, result, os.getloadavg()[0]


def row(name, lines, runs):
    seconds = statistics.median(run[0] for run in runs)
    cpu = statistics.median(run[1] for run in runs)
    # cpu: this process only; on PostgreSQL the server's work (constraint checks at commit) is
    # in the wall clock, not here.
    return {"import": name, "lines": lines, "seconds_median": round(seconds, 2),
            "seconds_runs": [round(run[0], 2) for run in runs],
            "cpu_seconds_median": round(cpu, 2), "cpu_us_per_line": round(cpu / lines * 1e6),
            "lines_per_second": round(lines / seconds),
            "load_after": [round(run[3], 2) for run in runs]}


def run(args, database_url, backend):
    setup_django(database_url)
    from projects.manifests.importing import import_manifest
    from projects.models import Image, Proposal, ProposalOutcome
    from projects.proposals.predictions import import_predictions, imported_model_version
    from projects.provisioning import create_iteration, create_project
    from reviewer.models import Box

    project = create_project(slug="bench", name="Bench", labels=LABELS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="loupe-bench-imports-") as folder:
        truth = write_file(folder, "truth.manifest", args.lines, lambda n: manifest_line(n, human=True))
        machine = write_file(folder, "machine.manifest", args.lines, lambda n: manifest_line(n, human=False))
        predictions = write_file(folder, "predictions.jsonl", args.lines, prediction_line)
        print(f"wrote 3 files of {args.lines} lines", file=sys.stderr)

        def import_file(iteration, path, limit=None, **options):
            with open(path, encoding="utf-8") as handle:
                lines = handle if limit is None else itertools.islice(handle, limit)
                return import_manifest(iteration=iteration, lines=lines, **options)

        runs, again, predicted, machine_runs = [], [], [], []
        for attempt in range(args.repeat):
            if "truth" not in args.only:
                break
            iteration = create_iteration(project=project, name=f"truth-{attempt}")
            result = timed(import_file, iteration, truth)
            report = result[2]
            assert (report.imported, report.errors) == (args.lines, []), report.summary()
            assert Image.objects.filter(iteration=iteration).count() == args.lines
            assert Box.objects.filter(image__iteration=iteration).count() == args.lines * BOXES
            runs.append(result)
            print(f"manifest {attempt}: {result[0]:.1f}s", file=sys.stderr)

            if "again" in args.only:
                result = timed(import_file, iteration, truth, limit=args.again)
                assert (result[2].imported, result[2].images_created) == (args.again, 0)
                again.append(result)

            if "predictions" in args.only:
                model = imported_model_version(project=project, name=f"batch-{attempt}")
                with open(predictions, encoding="utf-8") as handle:
                    result = timed(import_predictions, iteration=iteration, model_version=model, lines=handle)
                assert (result[2].images, result[2].problems) == (args.lines, []), result[2].summary()
                assert ProposalOutcome.objects.filter(model_version=model).count() == args.lines
                predicted.append(result)
                print(f"predictions {attempt}: {result[0]:.1f}s", file=sys.stderr)

        for attempt in range(args.repeat if "machine" in args.only else 0):
            other = create_iteration(project=project, name=f"machine-{attempt}")
            result = timed(import_file, other, machine)
            assert result[2].imported == args.lines
            assert Proposal.objects.filter(image__iteration=other).count() == args.lines * BOXES
            assert not Image.objects.filter(iteration=other, priority=0).exists()
            machine_runs.append(result)
            print(f"machine manifest {attempt}: {result[0]:.1f}s", file=sys.stderr)

    measured = [("manifest, new images, human boxes", args.lines, runs),
                ("manifest again (idempotent)", args.again, again),
                ("predictions (CustomLabels)", args.lines, predicted),
                ("manifest, new images, machine boxes", args.lines, machine_runs)]
    rows = [row(name, lines, found) for name, lines, found in measured if found]
    print(f"Import benchmark ({backend}, {BOXES} boxes per line, median of {args.repeat} run(s))")
    header = (f"{'import':<38} {'lines':>8} {'seconds':>8} {'cpu s':>7} {'cpu us/line':>11} "
              f"{'lines/s':>8} {'load':>5}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['import']:<38} {r['lines']:>8} {r['seconds_median']:>8.2f} "
              f"{r['cpu_seconds_median']:>7.2f} {r['cpu_us_per_line']:>11} {r['lines_per_second']:>8} "
              f"{r['load_after'][-1]:>5.1f}")
    max_rss = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(f"seconds: wall clock of the import call, reading the file included; cpu: this process only "
          f"(not the database server); load: 1-minute load average after the import; RSS {max_rss} MB")
    print(json.dumps({"backend": backend, "boxes_per_line": BOXES, "max_rss_mb": max_rss,
                      "loadavg_end": [round(value, 2) for value in os.getloadavg()], "results": rows}))


def main():
    args = parse_args()
    with scratch_database(args.database_url) as (url, backend):
        run(args, url, backend)


if __name__ == "__main__":
    main()
