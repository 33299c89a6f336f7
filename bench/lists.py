"""Benchmark: server time of the owner's image list and the iteration page at --sizes images.

Builds in a throwaway database (a temporary SQLite file by default, or with --database-url
postgres://... a database created on that server and dropped at the end) one project per size, its
iteration of that many images (a third reviewed, one box each on every fifth image), inserted in
raw batches through the counters' triggers, then times through Django's test client as the owner
(median of --repeat, whole request and its SQL alone): the list's first page, a page in the middle
(by cursor), the reviewed images, a label filter, an old numbered link (?page=20), and the iteration
page. Also times setting every image's priority in one UPDATE, a statement the counters' update
trigger sees but must not make costly.

Prints a table and the load average; the last line is one JSON object with the figures.

    .venv/bin/python bench/lists.py [--sizes 10000 100000] [--repeat 15]
                                    [--database-url postgres://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import json
import os
import random
import statistics
import time
import warnings

from benchdb import scratch_database, setup_django

BATCH = 10_000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="images per run")
    parser.add_argument("--repeat", type=int, default=15, help="requests timed per page (median)")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server to create the throwaway database on")
    return parser.parse_args()


def populate(size):
    """Project "bench-<size>" with iteration v1 of size images."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from projects.bulkrows import insert_rows
    from projects.models import Image, Iteration, LabelClass, Membership, Project
    from reviewer.models import Box

    project = Project.objects.create(slug=f"bench-{size}", name=f"Bench {size}")
    labels = [LabelClass.objects.create(project=project, name=n, order=i) for i, n in enumerate(["a", "b"])]
    owner = get_user_model().objects.create_user(f"owner-{size}")
    Membership.objects.create(project=project, user=owner, role=Membership.Role.OWNER)
    iteration = Iteration.objects.create(project=project, name="v1")
    rng, now = random.Random(7), timezone.now()
    columns = ["iteration_id", "source", "name", "width", "height", "depth", "file_size", "format",
               "position", "random_key", "priority", "status", "no_objects", "version", "created_at",
               "reviewed_at", "reviewed_by_id"]
    start = time.perf_counter()
    with transaction.atomic():
        for first in range(0, size, BATCH):
            rows = []
            for n in range(first, min(first + BATCH, size)):
                done = n % 3 == 0
                rows.append((iteration.pk, f"s3://bench/{n:06d}.jpg", f"{n:06d}.jpg", 1024, 768, 3, 0, "JPEG",
                             n, rng.randrange(2**31), rng.random(), "reviewed" if done else "pending",
                             n % 30 == 0, 1 if done else 0, now, now if done else None,
                             owner.pk if done else None))
            insert_rows(Image, columns, rows)
    fill_seconds = time.perf_counter() - start
    boxed = [pk for pk, position in Image.objects.filter(iteration=iteration).values_list("id", "position")
             if position % 5 == 0]
    insert_rows(Box, ["image_id", "label_id", "left", "top", "width", "height", "origin", "relabeled",
                      "created_at"],
                [(pk, labels[pk % 2].pk, 10, 10, 50, 50, "imported", False, now) for pk in boxed])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    return iteration, owner, labels, fill_seconds


def timed(client, url, query, repeat):
    """Median seconds of the whole request and of its SQL alone (less swayed by a busy machine)."""
    from django.db import connection

    times, sql = [], []

    def clocked(execute, *args):
        start = time.perf_counter()
        try:
            return execute(*args)
        finally:
            sql[-1] += time.perf_counter() - start

    for _ in range(repeat):
        sql.append(0.0)
        with connection.execute_wrapper(clocked):
            start = time.perf_counter()
            response = client.get(url, query)
            times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"{url} {query} answered {response.status_code}")
    return statistics.median(times), statistics.median(sql), response


def run(size, repeat):
    from django.test import Client
    from django.urls import reverse

    from projects.models import Image, ImageCount, counts_of

    iteration, owner, labels, fill_seconds = populate(size)
    client = Client()
    client.force_login(owner)
    slug = iteration.project.slug
    url = reverse("reviewer:images", args=[slug, "v1"])
    middle = Image.objects.filter(iteration=iteration, position=size // 2).get()
    figures = {"fill_ms": round(fill_seconds * 1000)}
    pages = {
        "list_first_page": {},
        "list_middle_page": {"after": f"{middle.position}.{middle.pk}"},
        "list_reviewed": {"status": "reviewed", "after": f"{middle.position}.{middle.pk}"},
        "list_label": {"label": labels[0].pk},
        "list_old_page_20": {"page": 20},
    }
    for name, query in pages.items():
        seconds, sql, response = timed(client, url, query, repeat)
        assert response.content.count(b"/reopen\"") == 50, name
        figures[f"{name}_ms"], figures[f"{name}_sql_ms"] = round(seconds * 1000, 1), round(sql * 1000, 1)
    seconds, sql, response = timed(client, reverse("projects:iteration", args=[slug, "v1"]), {}, repeat)
    figures["iteration_page_ms"] = round(seconds * 1000, 1)
    figures["iteration_page_sql_ms"] = round(sql * 1000, 1)
    start = time.perf_counter()
    Image.objects.filter(iteration=iteration).update(priority=0.5)
    figures["update_priority_all_ms"] = round((time.perf_counter() - start) * 1000)
    expected = {"total": size, "reviewed": len(range(0, size, 3)), "empty": len(range(0, size, 30))}
    counts = counts_of(iteration)
    assert {key: counts[key] for key in expected} == expected, counts
    figures["counter_rows"] = ImageCount.objects.filter(iteration=iteration).count()
    return figures


def main():
    args = parse_args()
    results = {}
    with scratch_database(args.database_url) as (url, vendor):
        warnings.filterwarnings("ignore", message="No directory at")
        setup_django(url, ALLOWED_HOSTS="testserver")
        from django.conf import settings
        from django.test.utils import override_settings

        # The bench serves pages without collected static files: plain static URLs, no manifest.
        override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
        for size in args.sizes:
            results[size] = run(size, args.repeat)
    load = os.getloadavg()
    names = [name for name in next(iter(results.values())) if name.endswith("_ms")]
    print(f"{'figure (median ms)':<28}" + "".join(f"{size:>12,}" for size in results))
    for name in names:
        print(f"{name:<28}" + "".join(f"{results[size][name]:>12}" for size in results))
    print(f"database: {vendor}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(json.dumps({"database": vendor, "sizes": results, "loadavg": [round(x, 2) for x in load]}))


if __name__ == "__main__":
    main()
