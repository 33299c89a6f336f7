"""Benchmark: server time of the review loop (claim the next image, save its review) at scale.

Builds one iteration of 100,000 pending images with 500,000 proposals (5 per image) in a throwaway
database: a temporary SQLite file by default, or with --database-url postgres://... a database
created on that server and dropped at the end. Then it plays a
reviewer for --iterations rounds: claim_next + submit_review, as the review page and headless
loops call them (a mix of accept-all, adjust, reject, add and "no objects"), while two other
reviewers hold leases on the hardest images. With --views it also times the HTTP submit view
through Django's test client (parse, validate, save, claim the next image, build its payload).

Prints a table with p50/p95/max per step; the last line is one JSON object with the figures.
SQLite runs with Loupe's own pragmas (WAL, synchronous=NORMAL); --sqlite-journal and --sqlite-sync
override them to show what the disk flush of each commit costs, and are labelled as such.

    .venv/bin/python bench/review.py [--images 100000] [--per-image 5] [--iterations 300] [--views]
                                     [--database-url postgres://postgres@127.0.0.1:5432/postgres]
                                     [--sqlite-journal WAL] [--sqlite-sync NORMAL]
"""

import argparse
import json
import random
import time
import warnings
from datetime import timedelta

from benchdb import scratch_database, setup_django
from timing import percentiles

BATCH = 10_000
WARMUP = 5  # untimed rounds: first-request imports and cold caches are not the steady state
TARGET_P95_MS = 30.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--per-image", type=int, default=5, help="proposals per image (default 5)")
    parser.add_argument("--iterations", type=int, default=300, help="reviews timed (default 300)")
    parser.add_argument("--views", action="store_true", help="also time the submit view over HTTP")
    parser.add_argument("--sqlite-sync", choices=["OFF", "NORMAL", "FULL"], default="",
                        help="diagnostic only: SQLite's synchronous pragma, to separate disk flushes "
                        "from server work (default: the app's setting)")
    parser.add_argument("--sqlite-journal", choices=["DELETE", "WAL"], default="",
                        help="diagnostic only: SQLite's journal mode (default: the app's setting)")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server to create the throwaway database on")
    return parser.parse_args()


def setup(database_url, views):
    if views:
        # The bench serves no static files; whitenoise's note about the missing folder is noise here.
        warnings.filterwarnings("ignore", message="No directory at")
        setup_django(database_url, ALLOWED_HOSTS="testserver")
    else:
        setup_django(database_url)


def populate(images, per_image):
    """Project, labels, model, iteration, then images and proposals in large raw batches."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from projects.bulkrows import insert_rows
    from projects.models import Image, Iteration, LabelClass, Membership, ModelVersion, Project, Proposal

    project = Project.objects.create(slug="bench", name="Bench")
    labels = [LabelClass.objects.create(project=project, name=n, hotkey=i + 1, order=i)
              for i, n in enumerate(["aws-logo", "smile-logo", "other"])]
    thresholds = ModelVersion.thresholds_from({labels[0].pk: 50, labels[1].pk: 40})
    model = ModelVersion.objects.create(project=project, name="m1", kind="imported", thresholds=thresholds)
    iteration = Iteration.objects.create(project=project, name="v2", shown_model=model)
    users = [get_user_model().objects.create_user(f"reviewer{n}") for n in range(4)]
    Membership.objects.bulk_create([Membership(project=project, user=user) for user in users])
    rng, now = random.Random(7), timezone.now()
    image_columns = ["iteration_id", "source", "name", "width", "height", "depth", "file_size", "format",
                     "position", "random_key", "priority", "status", "no_objects", "version", "created_at"]
    proposal_columns = ["image_id", "model_version_id", "label_id", "left", "top", "width", "height",
                        "confidence", "created_at"]
    with transaction.atomic():
        for first in range(0, images, BATCH):
            rows = [(iteration.pk, f"s3://bench/{n:06d}.jpg", f"{n:06d}.jpg", 1024, 768, 3, 0, "JPEG", n,
                     rng.randrange(2**31), rng.random(), "pending", False, 0, now)
                    for n in range(first, min(first + BATCH, images))]
            insert_rows(Image, image_columns, rows)
        ids = list(Image.objects.filter(iteration=iteration).order_by("id").values_list("id", flat=True))
        for first in range(0, len(ids), BATCH // per_image):
            rows = [(pk, model.pk, rng.choice(labels).pk, rng.uniform(0, 700), rng.uniform(0, 500),
                     rng.uniform(20, 300), rng.uniform(20, 260), rng.uniform(5, 99.5), now)
                    for pk in ids[first:first + BATCH // per_image] for _ in range(per_image)]
            insert_rows(Proposal, proposal_columns, rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    # Two colleagues hold the hardest images: every claim steps over their leases.
    hardest = Image.objects.filter(iteration=iteration).order_by("-priority", "id")
    for user, image in zip(users[1:3], hardest[:2], strict=True):
        Image.objects.filter(pk=image.pk).update(leased_by=user, lease_expires_at=now + timedelta(hours=2))
    return iteration, labels, users


def review_boxes(image, labels, round_number):
    """What a reviewer sends back, cycling through the everyday cases."""
    from projects.models import Proposal
    from reviewer.editor.reviews import BoxInput

    proposals = list(Proposal.objects.filter(image=image, model_version=image.iteration.shown_model_id)
                     .order_by("-confidence", "id"))
    boxes = [BoxInput(p.label_id, round(p.left), round(p.top), round(p.width), round(p.height), p.pk)
             for p in proposals]
    kind = round_number % 5
    if kind == 1:
        boxes[0] = BoxInput(labels[1].pk, boxes[0].left + 3, boxes[0].top, boxes[0].width, boxes[0].height,
                            boxes[0].proposal_id)
    elif kind == 2:
        boxes = boxes[1:]
    elif kind == 3:
        boxes.append(BoxInput(labels[2].pk, 10, 10, 40, 30))
    return boxes, kind == 4


class ServiceReviewer:
    """Claims and saves through the service functions, as headless loops do."""

    def __init__(self, iteration, labels, user):
        self.iteration, self.labels, self.user = iteration, labels, user
        self.claims, self.submits = [], []

    def review(self, round_number, *, timed=True):
        from reviewer.editor.reviews import submit_review
        from reviewer.queue import claim_next

        start = time.perf_counter()
        image = claim_next(iteration=self.iteration, user=self.user)
        claimed = time.perf_counter()
        boxes, empty = review_boxes(image, self.labels, round_number)
        start_submit = time.perf_counter()
        submit_review(image=image, reviewer=self.user, version=image.version, boxes=[] if empty else boxes,
                      no_objects=empty, elapsed_ms=2500)
        if timed:
            self.claims.append(claimed - start)
            self.submits.append(time.perf_counter() - start_submit)


class BrowserReviewer:
    """Saves through the submit view (which also claims the next image), as the review page does."""

    def __init__(self, iteration, labels, user):
        from django.test import Client

        from reviewer.queue import claim_next

        self.labels, self.timings = labels, []
        self.client = Client()
        self.client.force_login(user)
        self.image = claim_next(iteration=iteration, user=user)

    def review(self, round_number, *, timed=True):
        boxes, empty = review_boxes(self.image, self.labels, round_number)
        sent = [] if empty else [{"label": b.label_id, "left": b.left, "top": b.top, "width": b.width,
                                  "height": b.height, "proposal": b.proposal_id} for b in boxes]
        body = json.dumps({"version": self.image.version, "no_objects": empty, "elapsed_ms": 2500,
                           "boxes": sent})
        start = time.perf_counter()
        response = self.client.post(f"/review/images/{self.image.pk}/submit", body,
                                    content_type="application/json")
        if timed:
            self.timings.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"submit view answered {response.status_code}: {response.content[:300]!r}")
        model = self.image.__class__
        self.image = model.objects.select_related("iteration").get(pk=response.json()["next"]["id"])


def run(iteration, labels, users, rounds, views):
    """Alternate the two reviewers so both see the same machine conditions; warm up untimed first."""
    reviewers = [ServiceReviewer(iteration, labels, users[0])]
    if views:
        reviewers.append(BrowserReviewer(iteration, labels, users[3]))
    for n in range(WARMUP):
        for reviewer in reviewers:
            reviewer.review(n, timed=False)
    for n in range(rounds):
        for reviewer in reviewers:
            reviewer.review(n)
    return reviewers


def main():
    args = parse_args()
    with scratch_database(args.database_url) as (url, vendor):
        setup(url, args.views)
        from django.db import connection

        started = time.perf_counter()
        iteration, labels, users = populate(args.images, args.per_image)
        setup_s = time.perf_counter() - started
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                if args.sqlite_journal:
                    cursor.execute(f"PRAGMA journal_mode={args.sqlite_journal}")
                if args.sqlite_sync:
                    cursor.execute(f"PRAGMA synchronous={args.sqlite_sync}")
        service, *browser = run(iteration, labels, users, args.iterations, args.views)
        claims, submits = service.claims, service.submits
        rows = {"claim_next": percentiles(claims), "submit_review": percentiles(submits),
                "claim+submit": percentiles([c + s for c, s in zip(claims, submits, strict=True)])}
        if browser:
            rows["submit view (HTTP, incl. next claim)"] = percentiles(browser[0].timings)
        connection.close()
    report(vendor, args, setup_s, rows)


def report(vendor, args, setup_s, rows):
    pragmas = [f"journal_mode={args.sqlite_journal}"] if args.sqlite_journal else []
    pragmas += [f"synchronous={args.sqlite_sync}"] if args.sqlite_sync else []
    sync = f" ({', '.join(pragmas)})" if pragmas and vendor == "sqlite" else ""
    proposals = args.images * args.per_image
    print(f"Review loop on {vendor}{sync}: {args.images:,} images, {proposals:,} proposals, "
          f"{args.iterations} reviews timed (setup {setup_s:.1f} s)")
    print(f"{'step':<40}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for step, figures in rows.items():
        print(f"{step:<40}{figures['p50']:>9.2f}{figures['p95']:>9.2f}{figures['max']:>9.2f}")
    p95 = rows["claim+submit"]["p95"]
    print(f"claim+submit p95 {p95:.2f} ms: {'within' if p95 < TARGET_P95_MS else 'OVER'} the "
          f"{TARGET_P95_MS:.0f} ms target")
    print(json.dumps({"database": vendor, "sqlite_pragmas": pragmas if vendor == "sqlite" else [],
                      "images": args.images, "proposals": proposals,
                      "iterations": args.iterations, "setup_s": round(setup_s, 1),
                      "target_p95_ms": TARGET_P95_MS, **{step: figures for step, figures in rows.items()}}))


if __name__ == "__main__":
    main()
