"""Benchmark: Loupe over real HTTP (gunicorn on 127.0.0.1) at 10,000 and 100,000 images.

For each size, in a throwaway database (a temporary SQLite file by default; with --database
postgres://..., a database created on that server and dropped at the end), it builds one iteration of
pending images with 5 proposals each (as bench/review.py does) and imports a manifest of as many
reviewed lines into another, then measures:
- review save: a reviewer claims through /review/<slug>/<name>/next, then saves image after image,
  each save a POST to the submit URL on a new TCP connection (the response carries the next image);
- the owner's image list: page 1 and a deep page (the list's own next links lead there);
- import throughput (import_manifest, in-process, as bench/imports.py) and export throughput
  (write_manifest, in-process, as bench/export.py);
- the manifest page's check (GET) and the download that follows it (POST), over HTTP, and a
  download with other options than the check (which exports again).

On PostgreSQL the database is vacuumed and analyzed after the setup, as autovacuum would be a few
minutes after such a bulk load (see settle()). gunicorn runs in production mode (DEBUG=0,
collectstatic first: see bench/server.py) with one sync worker. Times are wall clock on the
client, connect included. Prints a table with the 100k/10k growth ratios (with --repeat, each
figure's median over the runs); the last line is one JSON object with all figures. (Not named
http.py: a file of that name in bench/ would shadow the standard library's http package for every
bench run from here.)

    .venv/bin/python bench/over_http.py [--images 10000 100000] [--saves 300] [--pages 30] [--repeat 3]
                                       [--database postgres://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

from benchdb import scratch_database, setup_django
from imports import manifest_line, write_file
from review import populate
from server import request_once, serve, server_cpu_seconds
from timing import percentiles

WARMUP = 5  # untimed requests first: imports and cold caches in the worker are not the steady state
CSRF_TOKEN = "benchbenchbenchbenchbenchbench12"  # any 32 letters; sent as cookie and header
ACCEPTED = "Rekognition will accept this manifest."


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, nargs="+", default=[10_000, 100_000],
                        help="iteration sizes, each in its own database (default 10000 100000)")
    parser.add_argument("--saves", type=int, default=300, help="review saves timed per size (default 300)")
    parser.add_argument("--pages", type=int, default=30, help="requests per list page timed (default 30)")
    parser.add_argument("--database", "--database-url", dest="database", default="",
                        help="a PostgreSQL server to create the throwaway databases on")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per size, in rounds over the sizes; the table shows each figure's "
                             "median (default 1; use 3 or more on a machine whose speed drifts)")
    parser.add_argument("--one-size", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


class Browser:
    """One person's cookies; every request opens a new TCP connection, as the brief of this bench asks."""

    def __init__(self, base_url, session_key):
        self.base_url = base_url
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.cookie = f"sessionid={session_key}; csrftoken={CSRF_TOKEN}"

    def request(self, method, path, body=None, content_type=None):
        """(status, headers, body, seconds) with the whole body read."""
        headers = {"Cookie": self.cookie}
        if method == "POST":
            headers["X-CSRFToken"] = CSRF_TOKEN
        if content_type:
            headers["Content-Type"] = content_type
        started = time.perf_counter()
        response, data = request_once(self.host, self.port, method, path, body=body, headers=headers,
                                      timeout=600)
        return response.status, dict(response.getheaders()), data, time.perf_counter() - started

    def expect(self, status, method, path, body=None, content_type=None):
        got, headers, data, seconds = self.request(method, path, body, content_type)
        if got != status:
            raise SystemExit(f"{method} {path} answered {got}, not {status}: {data[:400]!r}")
        return headers, data, seconds


def session_for(user):
    """A logged-in session made in-process (the login form is rate limited by django-axes)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def boxes_for(items, labels, round_number):
    """What the reviewer sends back for the editor's items, cycling through the everyday cases:
    accept all, relabel one, reject one, add one, "no objects"."""
    shown = [item for item in items if item["proposal"] is not None]
    boxes = [{"label": item["label"], "left": item["rect"][0], "top": item["rect"][1],
              "width": item["rect"][2], "height": item["rect"][3], "proposal": item["proposal"]}
             for item in shown]
    kind = round_number % 5
    if kind == 1 and boxes:
        boxes[0] = {**boxes[0], "label": labels[1].pk, "width": max(boxes[0]["width"] - 3, 5)}
    elif kind == 2:
        boxes = boxes[1:]
    elif kind == 3:
        boxes.append({"label": labels[2].pk, "left": 10, "top": 10, "width": 40, "height": 30})
    return boxes, kind == 4


def review_saves(browser, iteration, labels, saves):
    """Claim through the queue page, then save image after image; the timings of the saves."""
    from projects.models import Image
    from reviewer.editor.payload import editor_items

    headers, _data, _seconds = browser.expect(
        302, "GET", f"/review/{iteration.project.slug}/{iteration.name}/next")
    image_id = int(re.search(r"/review/images/(\d+)/", headers["Location"]).group(1))
    image = Image.objects.select_related("iteration").get(pk=image_id)
    current = {"id": image.pk, "version": image.version, "items": editor_items(image),
               "submit_url": f"/review/images/{image.pk}/submit", "model_version": iteration.shown_model_id}
    timings, cpu_started = [], None
    for number in range(WARMUP + saves):
        if number == WARMUP:
            cpu_started = server_cpu_seconds(browser.base_url)
        boxes, empty = boxes_for(current["items"], labels, number)
        body = json.dumps({"version": current["version"], "no_objects": empty, "elapsed_ms": 2500,
                           "boxes": [] if empty else boxes, "model_version": current["model_version"]})
        _headers, data, seconds = browser.expect(200, "POST", current["submit_url"], body, "application/json")
        if number >= WARMUP:
            timings.append(seconds)
        current = json.loads(data)["next"]
        if current is None:
            raise SystemExit(f"the queue ran out after {number + 1} saves: use more --images or fewer "
                             "--saves")
    return timings, cpu_per_request(browser.base_url, cpu_started, saves)


def cpu_per_request(base_url, started, requests):
    """Server CPU milliseconds per request since `started` (a server_cpu_seconds reading)."""
    now = server_cpu_seconds(base_url)
    return None if now is None or started is None else round((now - started) * 1000 / requests, 2)


def next_link(html):
    found = re.search(r'<a href="([^"]*)"[^>]*>\s*Next', html)
    return found.group(1).replace("&amp;", "&") if found else None


def list_pages(browser, iteration, images, requests):
    """Timings of page 1 and of a deep page of the owner's image list, and how the deep page was found."""
    base = f"/review/{iteration.project.slug}/{iteration.name}/images/"
    _headers, first, _seconds = browser.expect(200, "GET", base)
    html = first.decode()
    per_page = len(set(re.findall(r"/review/images/(\d+)/", html))) or 1
    link = next_link(html)
    if link is None:
        raise SystemExit("the image list has no next link: is the iteration smaller than a page?")
    if re.search(r"(^|[?&])page=\d+", link):
        deep_page = max(2, int(images * 0.9) // per_page)
        deep = base + re.sub(r"(^|([?&]))page=\d+", rf"\g<1>page={deep_page}", link)
        how = f"?page={deep_page} ({per_page} per page)"
    else:
        # Cursor links: walk them; each hop is one page further into the list.
        hops, deep = 1, base + link if link.startswith("?") else link
        while hops < 20:
            _headers, page, _seconds = browser.expect(200, "GET", deep)
            following = next_link(page.decode())
            if following is None:
                break
            deep = base + following if following.startswith("?") else following
            hops += 1
        how = f"the next link followed {hops} times"
    timings, cpu = {}, {}
    for name, path in (("page 1", base), ("deep page", deep)):
        for _ in range(WARMUP):
            browser.expect(200, "GET", path)
        started = server_cpu_seconds(browser.base_url)
        timings[name] = [browser.expect(200, "GET", path)[2] for _ in range(requests)]
        cpu[name] = cpu_per_request(browser.base_url, started, requests)
    return timings, cpu, how


def checked_download(browser, iteration, lines):
    """Seconds of the manifest check, of the download after it, and of a download the check did not
    prepare (other options: exported again)."""
    base = f"/p/{iteration.project.slug}/i/{iteration.name}/manifest"
    _headers, page, check_s = browser.expect(200, "GET", f"{base}/check")
    if ACCEPTED not in page.decode():
        raise SystemExit("the manifest check did not accept the imported manifest")
    form = "application/x-www-form-urlencoded"
    _headers, body, download_s = browser.expect(200, "POST", f"{base}/download", b"", form)
    _check_lines(body, lines)
    _headers, body, uncached_s = browser.expect(200, "POST", f"{base}/download", b"no_empty=on", form)
    _check_lines(body, lines)
    return {"check_s": round(check_s, 3), "download_after_check_s": round(download_s, 3),
            "download_unchecked_s": round(uncached_s, 3), "manifest_mb": round(len(body) / 1e6, 1)}


def _check_lines(body, lines):
    found = body.count(b"\n")
    if found != lines:
        raise SystemExit(f"the download has {found} lines, not {lines}")


def import_and_export(project, lines):
    """Lines/s of import_manifest (a new iteration of reviewed images) and of write_manifest on it."""
    from projects.manifests.export import write_manifest
    from projects.manifests.importing import import_manifest
    from projects.provisioning import create_iteration

    iteration = create_iteration(project=project, name="imported")
    with tempfile.TemporaryDirectory(prefix="loupe-bench-http-") as folder:
        path = write_file(folder, "truth.manifest", lines, lambda n: manifest_line(n, human=True))
        with open(path, encoding="utf-8") as handle:
            started = time.perf_counter()
            report = import_manifest(iteration=iteration, lines=handle)
            import_s = time.perf_counter() - started
        assert (report.imported, report.errors) == (lines, []), report.summary()
        with open(f"{folder}/out.manifest", "w", encoding="utf-8") as out:
            started = time.perf_counter()
            result = write_manifest(iteration=iteration, out=out)
            export_s = time.perf_counter() - started
        assert result.lines == lines and result.report.ok, result.report.as_text()
    return iteration, {"import_s": round(import_s, 2), "import_lines_per_s": round(lines / import_s),
                       "export_s": round(export_s, 2), "export_lines_per_s": round(lines / export_s)}


@contextmanager
def django_on(url, var_dir):
    setup_django(url, LOUPE_VAR_DIR=var_dir)
    try:
        yield
    finally:
        from django.db import connections

        connections.close_all()


def measure(size, args, url, var_dir):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from projects.models import Membership

    started = time.perf_counter()
    iteration, labels, users = populate(size, 5)
    project = iteration.project
    owner = get_user_model().objects.create_user("owner")
    Membership.objects.create(project=project, user=owner, role=Membership.Role.OWNER)
    exported, throughput = import_and_export(project, size)
    settle(connection)
    setup_s = time.perf_counter() - started
    reviewer_key, owner_key = session_for(users[3]), session_for(owner)
    connection.close()  # the server writes now; this process only reads what it needs
    with serve(url, {"LOUPE_VAR_DIR": var_dir}) as base_url:
        reviewer, owner_browser = Browser(base_url, reviewer_key), Browser(base_url, owner_key)
        saves, save_cpu = review_saves(reviewer, iteration, labels, args.saves)
        pages, page_cpu, how = list_pages(owner_browser, iteration, size, args.pages)
        download = checked_download(reviewer, exported, size)
    return {
        "images": size, "setup_s": round(setup_s, 1),
        "save": {**percentiles(saves), "server_cpu_ms": save_cpu},
        "list_page_1": {**percentiles(pages["page 1"]), "server_cpu_ms": page_cpu["page 1"]},
        "list_deep_page": {**percentiles(pages["deep page"]), "server_cpu_ms": page_cpu["deep page"]},
        "deep_page": how, **throughput, **download,
    }


def settle(connection):
    """On PostgreSQL, what autovacuum does within minutes of a bulk load (set hint bits, visibility
    map, statistics), done now: otherwise the first timings race autovacuum's pass over the tables
    just filled, on the same two cores. SQLite has no such pass."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def ratio(large, small):
    return round(large / small, 2) if large is not None and small else None


def cell(value):
    if value is None:
        return "n/a"
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


def median_row(runs):
    """One size's figures over its runs: the median of each number, the rest as the first run has it."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: median_row([run[key] for run in runs]) for key in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool) and None not in runs:
        return round(statistics.median(runs), 3 if isinstance(first, float) else None)
    return first


def report(vendor, rows, load_before, load_after, runs):
    repeat = len(next(iter(runs.values())))
    print(f"Loupe over HTTP (gunicorn, 1 sync worker, production settings) on {vendor}; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
          + (f"; median of {repeat} runs per size, taken in rounds" if repeat > 1 else ""))
    sizes = [row["images"] for row in rows]
    header = f"{'figure':<44}" + "".join(f"{size:>12,}" for size in sizes)
    if len(rows) > 1:
        header += f"{'ratio':>9}"
    print(header)
    print("-" * len(header))
    figures = [
        ("review save p50 ms (new connection)", lambda r: r["save"]["p50"]),
        ("review save p95 ms", lambda r: r["save"]["p95"]),
        ("review save p99 ms", lambda r: r["save"]["p99"]),
        ("review save server CPU ms per request", lambda r: r["save"]["server_cpu_ms"]),
        ("list page 1 p50 ms", lambda r: r["list_page_1"]["p50"]),
        ("list page 1 p95 ms", lambda r: r["list_page_1"]["p95"]),
        ("list page 1 server CPU ms per request", lambda r: r["list_page_1"]["server_cpu_ms"]),
        ("list deep page p50 ms", lambda r: r["list_deep_page"]["p50"]),
        ("list deep page p95 ms", lambda r: r["list_deep_page"]["p95"]),
        ("list deep page server CPU ms per request", lambda r: r["list_deep_page"]["server_cpu_ms"]),
        ("import lines/s (in-process)", lambda r: r["import_lines_per_s"]),
        ("export lines/s (in-process)", lambda r: r["export_lines_per_s"]),
        ("manifest check s (GET)", lambda r: r["check_s"]),
        ("download after the check s (POST)", lambda r: r["download_after_check_s"]),
        ("download with other options s (exports)", lambda r: r["download_unchecked_s"]),
    ]
    ratios = {}
    for name, read in figures:
        values = [read(row) for row in rows]
        line = f"{name:<44}" + "".join(f"{cell(value):>12}" for value in values)
        if len(rows) > 1:
            ratios[name] = ratio(values[-1], values[0])
            line += f"{cell(ratios[name]):>9}"
        print(line)
    print(f"deep page: {', '.join(row['deep_page'] for row in rows)}; ratio: largest size over smallest")
    print("server CPU: gunicorn's processes only (SQLite's work is in them, a PostgreSQL server's is not)")
    every_run = {"runs": {str(size): found for size, found in runs.items()}} if repeat > 1 else {}
    print(json.dumps({"database": vendor, "load_average_before": [round(x, 2) for x in load_before],
                      "load_average_after": [round(x, 2) for x in load_after],
                      "server": "gunicorn 1 sync worker", "results": rows,
                      "ratios_largest_over_smallest": ratios,
                      **every_run}))


def measure_one(args):
    """One size in this process (Django is set up once per process, on one database)."""
    size = args.images[0]
    with scratch_database(args.database) as (url, vendor), \
            tempfile.TemporaryDirectory(prefix="loupe-bench-var-") as var_dir, django_on(url, var_dir):
        row = measure(size, args, url, var_dir)
    print(json.dumps({"database": vendor, **row}))


def main():
    args = parse_args()
    if args.one_size:
        measure_one(args)
        return
    load_before = os.getloadavg()
    sizes = sorted(args.images)
    runs, vendor = {size: [] for size in sizes}, ""
    # In rounds (10k, 100k, 10k, 100k...): a machine that slows down for a while slows both sizes.
    for _round in range(max(args.repeat, 1)):
        for size in sizes:
            print(f"{size:,} images...", file=sys.stderr)
            command = [sys.executable, __file__, "--one-size", "--images", str(size), "--saves",
                       str(args.saves), "--pages", str(args.pages), "--database", args.database]
            done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
            if done.returncode:
                raise SystemExit(f"the run at {size} images failed (exit {done.returncode})")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            vendor = row.pop("database")
            print(json.dumps(row), file=sys.stderr)
            runs[size].append(row)
    rows = [median_row(runs[size]) for size in sizes]
    report(vendor, rows, load_before, os.getloadavg(), runs)


if __name__ == "__main__":
    main()
