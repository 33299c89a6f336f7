"""Benchmark: many reviewers at once against gunicorn and PostgreSQL, over HTTP, as browsers do.

Builds one iteration of --images pending images (small JPEGs stored in the media folder, with
--per-image proposals each) in a throwaway database, starts gunicorn on 127.0.0.1 (bench/server.py,
--workers sync workers, production settings), logs --reviewers reviewers in (each its own user and
session cookie) and lets each loop for --seconds as the editor does: open the queue once (GET
/review/<slug>/<name>/next, a redirect to the image page, whose embedded payload names the image
file and the submit URL), then per image fetch its file and submit the review the editor would send
(accept every proposal; the JSON body and X-CSRFToken header of the editor's JavaScript), whose
answer carries the next image, leased already. The queue page is opened again only when a submit
names no next image. --think-ms waits before each submit (each pause drawn between 0.5x and 1.5x
of it, starts spread over one pause, as people do not work in step): 0 measures the server
saturated; a person's seconds per image measure what reviewers feel.

Afterwards it checks the database: every accepted submit is stored exactly once (Review rows equal
the accepted submits, one per image, by the reviewer who submitted it), and no image was handed to
two reviewers (by the claim or by a submit's "next"), so no two leases on one image were ever live.

Prints a table with p50/p95/p99 per step and per cycle, the errors (any answer but the expected
ones) and the checks; the last line is one JSON object with the figures.

    .venv/bin/python bench/load.py [--seconds 60] [--reviewers 20] [--images 3000] [--workers 4]
                                   [--threads 1] [--think-ms 0]
                                   [--database-url postgres://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import io
import json
import os
import random
import re
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from benchdb import scratch_database, setup_django
from server import request_once, serve, server_cpu_seconds
from timing import percentiles

SLUG, ITERATION = "load", "v1"
PASSWORD = "bench-load-password"
TARGET_P95_MS = 150.0
STEPS = ("claim", "page", "file", "submit")
DISTINCT_PICTURES = 24  # images are copies of these, each under its own name


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--per-image", type=int, default=3, help="proposals per image (default 3)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker; >1 is gthread")
    parser.add_argument("--think-ms", type=float, default=0, help="pause before each submit (default 0)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres",
                        help="the PostgreSQL server to create the throwaway database on")
    return parser.parse_args()


# --- the data -----------------------------------------------------------------------------------------


def pictures():
    """A few distinct small JPEGs (shapes on a background), as bytes."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    rng, made = random.Random(3), []
    for _ in range(DISTINCT_PICTURES):
        picture = PILImage.new("RGB", (640, 480), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(picture)
        for _ in range(6):
            x, y = rng.randrange(560), rng.randrange(400)
            draw.rectangle((x, y, x + rng.randrange(20, 80), y + rng.randrange(20, 80)),
                           fill=tuple(rng.randrange(256) for _ in range(3)))
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=80)
        made.append(buffer.getvalue())
    return made


def populate(images, per_image, reviewers, media_root):
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from projects.bulkrows import insert_rows
    from projects.models import Image, Iteration, LabelClass, Membership, ModelVersion, Project, Proposal

    assert Path(settings.MEDIA_ROOT) == media_root
    project = Project.objects.create(slug=SLUG, name="Load")
    labels = [LabelClass.objects.create(project=project, name=n, hotkey=i + 1, order=i)
              for i, n in enumerate(["aws-logo", "smile-logo"])]
    model = ModelVersion.objects.create(project=project, name="m1", kind="imported",
                                        thresholds=ModelVersion.thresholds_from({labels[0].pk: 50}))
    iteration = Iteration.objects.create(project=project, name=ITERATION, shown_model=model)
    password = make_password(PASSWORD)  # hashed once: 20 PBKDF2 hashes are most of a minute here
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"reviewer{n:02d}", password=password) for n in range(reviewers))
    Membership.objects.bulk_create([Membership(project=project, user=user) for user in users])

    folder = media_root / "bench"
    folder.mkdir(parents=True)
    blobs = pictures()
    for n in range(images):
        (folder / f"{n:05d}.jpg").write_bytes(blobs[n % len(blobs)])
    rng, now = random.Random(7), timezone.now()
    image_columns = ["iteration_id", "source", "name", "width", "height", "depth", "file_size", "format",
                     "position", "random_key", "priority", "status", "no_objects", "version", "created_at"]
    with transaction.atomic():
        insert_rows(Image, image_columns, [
            (iteration.pk, f"bench/{n:05d}.jpg", f"{n:05d}.jpg", 640, 480, 3, len(blobs[n % len(blobs)]),
             "JPEG", n, rng.randrange(2**31), rng.random(), "pending", False, 0, now)
            for n in range(images)])
        ids = list(Image.objects.filter(iteration=iteration).values_list("id", flat=True))
        insert_rows(Proposal, ["image_id", "model_version_id", "label_id", "left", "top", "width", "height",
                               "confidence", "created_at"],
                    [(pk, model.pk, rng.choice(labels).pk, rng.uniform(0, 500), rng.uniform(0, 380),
                      rng.uniform(20, 120), rng.uniform(20, 90), rng.uniform(55, 99), now)
                     for pk in ids for _ in range(per_image)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return [user.username for user in users]


# --- one simulated browser ------------------------------------------------------------------------------


class Browser:
    """Cookies, CSRF and redirects by hand over http.client: what the bench measures is the server."""

    def __init__(self, base_url):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response, data = request_once(self.host, self.port, method, path, body=body, headers=headers)
        for header in response.msg.get_all("Set-Cookie") or ():
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response.status, response.getheader("Location", ""), data

    def login(self, username):
        status, _, page = self.request("GET", "/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        status, location, _ = self.request(
            "POST", "/login/", body=urlencode({"username": username, "password": PASSWORD,
                                               "csrfmiddlewaretoken": token}),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        if status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login of {username} failed: HTTP {status}")


def embedded(page, element_id):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>'.encode(), page,
                      re.S)
    return json.loads(match.group(1)) if match else None


class Reviewer(threading.Thread):
    def __init__(self, username, base_url, deadline, think_s):
        super().__init__(name=username)
        self.username, self.browser = username, Browser(base_url)
        self.deadline, self.think_s = deadline, think_s
        # People do not work in step: each pause is drawn between half and one and a half times
        # --think-ms, and each reviewer starts somewhere within one pause.
        self.rng = random.Random(username)
        self.times = defaultdict(list)  # step -> seconds
        self.cycles = []
        self.errors = []  # (step, status, detail)
        self.accepted = []  # (image id, review id)
        self.handed = []  # (image id, monotonic time it was handed to this reviewer)
        self.empty = 0

    def timed(self, step, method, path, **kwargs):
        start = time.perf_counter()
        status, location, data = self.browser.request(method, path, **kwargs)
        self.times[step].append(time.perf_counter() - start)
        return status, location, data

    def fail(self, step, status, data):
        self.errors.append((step, status, data[:200].decode(errors="replace")))

    def run(self):
        payload = None
        if self.think_s:
            time.sleep(self.rng.uniform(0, self.think_s))
        while time.monotonic() < self.deadline:
            began = time.perf_counter()
            if payload is None:
                payload = self.open_queue()
                if payload is None:
                    continue
            status, _, data = self.timed("file", "GET", payload["file_url"])
            if status != 200 or not data:
                self.fail("file", status, data)
                payload = None
                continue
            if self.think_s:
                pause = self.think_s * self.rng.uniform(0.5, 1.5)
                time.sleep(pause)
                began += pause  # a cycle is the server's time, not the reviewer's
            payload = self.submit(payload)
            self.cycles.append(time.perf_counter() - began)

    def open_queue(self):
        """The queue page (a claim, redirected to the image page): what a reviewer opens first, and
        again only when the editor has no next image to swap in."""
        status, location, data = self.timed("claim", "GET", f"/review/{SLUG}/{ITERATION}/next")
        if status == 200:  # the queue-empty page: an expected answer
            self.empty += 1
            time.sleep(0.5)
            return None
        if status != 302:
            self.fail("claim", status, data)
            return None
        status, _, page = self.timed("page", "GET", location)
        payload = embedded(page, "review-image") if status == 200 else None
        if payload is None or not payload["editable"]:
            self.fail("page", status, page if payload is None else b"image not editable")
            return None
        self.handed.append((payload["id"], time.monotonic()))
        return payload

    def submit(self, payload):
        """Save as the editor does; its answer carries the next image, swapped in without a page load."""
        status, _, data = self.timed("submit", "POST", payload["submit_url"], body=json.dumps({
            "version": payload["version"], "model_version": payload["model_version"],
            "no_objects": False, "elapsed_ms": 4000, "started_at": None, "open_elsewhere": [],
            "boxes": [{"label": item["label"], "left": item["rect"][0], "top": item["rect"][1],
                       "width": item["rect"][2], "height": item["rect"][3], "proposal": item["proposal"]}
                      for item in payload["items"]],
            "hidden": [],
        }), headers={"Content-Type": "application/json", "Accept": "application/json",
                     "X-CSRFToken": self.browser.cookies.get("csrftoken", ""),
                     "Referer": f"http://{self.browser.host}:{self.browser.port}{payload['page_url']}"})
        if status != 200:
            self.fail("submit", status, data)
            return None
        answer = json.loads(data)
        self.accepted.append((answer["saved"]["image"], answer["saved"]["review"]))
        following = answer.get("next")
        if following:
            # The submit already leased the following image to this reviewer.
            self.handed.append((following["id"], time.monotonic()))
        return following


# --- figures and checks -----------------------------------------------------------------------------------


def check_database(reviewers):
    """Every accepted submit stored once, by its reviewer; no image handed to two reviewers."""
    from projects.models import Image
    from reviewer.models import Review

    accepted = {(image, review, r.username) for r in reviewers for image, review in r.accepted}
    stored = set(Review.objects.filter(image__iteration__project__slug=SLUG)
                 .values_list("image_id", "pk", "reviewer__username"))
    per_image = Counter(image for image, _, _ in stored)
    holders = defaultdict(set)
    for r in reviewers:
        for image, _ in r.handed:
            holders[image].add(r.username)
    reviewed_by = dict(Image.objects.filter(pk__in=[image for image, _, _ in accepted])
                       .values_list("pk", "reviewed_by__username"))
    return {
        "accepted_submits": len(accepted),
        "review_rows": len(stored),
        "rows_equal_accepted": stored == accepted,
        "images_reviewed_twice": sum(1 for n in per_image.values() if n > 1),
        "images_handed_to_two_reviewers": sum(1 for users in holders.values() if len(users) > 1),
        "reviewed_by_mismatches": sum(1 for image, _, user in accepted if reviewed_by.get(image) != user),
    }


def main():
    args = parse_args()
    with scratch_database(args.database_url) as (database_url, engine), \
            tempfile.TemporaryDirectory(prefix="loupe-load-") as var:
        setup_django(database_url, LOUPE_VAR_DIR=var)
        start = time.perf_counter()
        usernames = populate(args.images, args.per_image, args.reviewers, Path(var) / "media")
        print(f"populated {args.images} images ({args.per_image} proposals each), {args.reviewers} reviewers "
              f"in {time.perf_counter() - start:.1f} s on {engine}")
        from django.db import connections

        connections.close_all()
        with serve(database_url, {"LOUPE_VAR_DIR": var, "LOUPE_LOGIN_FAILURE_LIMIT": "1000"},
                   workers=args.workers, threads=args.threads) as base_url:
            reviewers = [Reviewer(name, base_url, 0, args.think_ms / 1000) for name in usernames]
            for reviewer in reviewers:
                reviewer.browser.login(reviewer.username)
            load_before = os.getloadavg()
            cpu_before = server_cpu_seconds(base_url)
            began = time.monotonic()
            for reviewer in reviewers:
                reviewer.deadline = began + args.seconds
                reviewer.start()
            for reviewer in reviewers:
                reviewer.join()
            elapsed = time.monotonic() - began
            load_after = os.getloadavg()
            cpu_after = server_cpu_seconds(base_url)
        # What a review costs gunicorn in CPU, whatever else shares the cores (None off Linux).
        server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        checks = check_database(reviewers)
    report(args, engine, reviewers, elapsed, (load_before, load_after), server_cpu, checks)


def report(args, engine, reviewers, elapsed, loads, server_cpu, checks):
    load_before, load_after = loads
    steps = {step: percentiles([t for r in reviewers for t in r.times[step]]) for step in STEPS}
    cycle = percentiles([t for r in reviewers for t in r.cycles])
    errors = [(r.username, *error) for r in reviewers for error in r.errors]
    accepted = sum(len(r.accepted) for r in reviewers)
    throughput = accepted / elapsed if elapsed else 0.0
    worst_p95 = max((s["p95"] for s in steps.values() if s["p95"] is not None), default=None)
    print(f"\n{args.reviewers} reviewers for {elapsed:.1f} s against gunicorn ({args.workers} workers x "
          f"{args.threads} threads) on {engine}; think {args.think_ms:.0f} ms; {args.images} images")
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f}, after {load_after[0]:.2f} "
          f"{load_after[1]:.2f} ({os.cpu_count()} cores)")
    print(f"\n{'step':<28}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    names = {"claim": "claim (GET next)", "page": "page (payload)", "file": "image file",
             "submit": "submit (POST)"}
    for step in STEPS:
        s = steps[step]
        print(f"{names[step]:<28}{s['n']:>7}{fmt(s['p50'])}{fmt(s['p95'])}{fmt(s['p99'])}{fmt(s['max'])}")
    print(f"{'cycle (file+submit[+queue])':<28}{cycle['n']:>7}{fmt(cycle['p50'])}{fmt(cycle['p95'])}"
          f"{fmt(cycle['p99'])}{fmt(cycle['max'])}")
    cpu_ms = round(server_cpu * 1000 / accepted, 1) if server_cpu is not None and accepted else None
    if cpu_ms is not None:
        print(f"\ngunicorn CPU {server_cpu:.1f} s in all: {cpu_ms} ms per review (its requests), "
              f"a ceiling of {1000 / cpu_ms * (os.cpu_count() or 1):.0f} reviews/s on {os.cpu_count()} idle "
              "cores before the database's share")
    print(f"\nthroughput {throughput:.1f} reviews/s ({accepted} accepted); queue-empty answers "
          f"{sum(r.empty for r in reviewers)}; errors {len(errors)}")
    for error in errors[:20]:
        print("  error:", *error)
    print("checks:", ", ".join(f"{k}={v}" for k, v in checks.items()))
    ok = (not errors and checks["rows_equal_accepted"] and not checks["images_reviewed_twice"]
          and not checks["images_handed_to_two_reviewers"] and not checks["reviewed_by_mismatches"])
    print(f"target: 0 errors and p95 under {TARGET_P95_MS:.0f} ms per step: "
          f"{'met' if ok and worst_p95 is not None and worst_p95 < TARGET_P95_MS else 'NOT met'}")
    print(json.dumps({
        "bench": "load", "engine": engine, "reviewers": args.reviewers, "seconds": round(elapsed, 1),
        "workers": args.workers, "threads": args.threads, "think_ms": args.think_ms, "images": args.images,
        "throughput_reviews_per_s": round(throughput, 2), "accepted": accepted, "steps_ms": steps,
        "server_cpu_ms_per_review": cpu_ms,
        "cycle_ms": cycle, "errors": len(errors), "error_list": errors[:50],
        "queue_empty": sum(r.empty for r in reviewers), "checks": checks,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "target_p95_ms": TARGET_P95_MS, "target_met": bool(ok and worst_p95 is not None
                                                            and worst_p95 < TARGET_P95_MS),
    }))


def fmt(value):
    return f"{'-' if value is None else value:>10}"


if __name__ == "__main__":
    main()
