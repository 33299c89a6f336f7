"""Metrics from review work: how good the model that proposed on an iteration was, judged by the
reviewed boxes as truth, what reviewers did with its proposals, and how fast they review.

The figures come from one pass over the iteration's reviewed images (boxes, the model's proposals
and the reviews, each streamed in image order with values_list; never a query per image), matched
with the evaluation module's rules (same label, IoU >= 0.5, greedy by confidence), so truth that was
imported or came from Ground Truth is measured the same way. The pass keeps only counts (per label
and per whole-number confidence), which are stored in an IterationMetrics row with the signature
of the state they were computed from. `current()` reads them while that state holds; when only
first reviews landed since, it folds just those images in (every count is a sum); anything else
(a correction, an import, new proposals or thresholds) takes a whole pass, which a page makes
itself for a small iteration and leaves to a background task for a large one.
"""

import hashlib
import json
from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import timedelta
from itertools import groupby
from operator import itemgetter

from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone

from projects.detections import Detection
from projects.local_model import evaluation
from projects.models import DEFAULT_THRESHOLD, Image, Iteration, IterationMetrics, Proposal, image_counts
from reviewer.models import Box, Review

FORMAT = 1  # bump when the stored counts change shape: every cached row is then recomputed
BINS = 101  # whole-number confidences 0..100: the precision/recall curve's thresholds
TOP_RELABELS = 5
CHUNK = 5000
VERDICTS = ("accepted", "adjusted", "rejected", "hidden", "undecided")
# Reviews faster than this are bulk or headless saves, not a person's pace: they count as reviews
# but not towards the time figures.
MIN_HUMAN_MS = 1
# Up to this many reviewed images a page computes the figures itself (about a second); beyond, a
# background task does, and pages show the stored figures meanwhile.
INLINE_IMAGES = 2000
REQUEUE_AFTER = timedelta(minutes=15)


# -- the few places that know how other parts of the app store things ---------------------------------

# The Iteration field naming that model, for select_related.
PROPOSER_FIELD = "shown_model"


def proposer(iteration):
    """The model whose proposals reviewers are shown on this iteration (None: no model yet)."""
    return iteration.shown_model


def proposer_id(iteration):
    return iteration.shown_model_id


def _thresholds(model_version, labels):
    """{label id: the model's current threshold 0..100} (the label's own, else the default)."""
    return model_version.thresholds_by_label([label.pk for label in labels])


def _verdict(decision):
    """What a review did with one proposal: accepted, adjusted, rejected or hidden (below the
    reviewer's confidence slider and not accepted: counted apart from the reviewer's rejections)."""
    verdict = decision.get("verdict")
    if verdict in ("accepted", "adjusted"):
        return verdict
    if decision.get("hidden") or verdict == "hidden":
        return "hidden"
    return "rejected" if verdict == "rejected" else None


# -- one pass -------------------------------------------------------------------------------------

def compute(iteration, model_version, labels=None, *, image_ids=None):
    """The stored counts (a JSON-ready dict) of model_version's proposals on the iteration's reviewed
    images (only those in image_ids when given: what a fold-in adds)."""
    labels = list(iteration.project.labels.all()) if labels is None else labels
    thresholds = _thresholds(model_version, labels)
    per_label = defaultdict(_label_counts)
    for label_id in thresholds:
        per_label[label_id]  # noqa: B018 - every label is listed, found or not
    verdicts = Counter({name: 0 for name in VERDICTS})
    origins, relabels = Counter(), Counter()
    reviewers = defaultdict(lambda: {"reviews": 0, "timed": 0, "elapsed_ms": 0, "tenths": Counter()})
    scope = _scope(iteration, image_ids)
    # Every review the figures include or were made after, pending images' included.
    reviewed_after = {"image_id__in": scope["image_id__in"]} if image_ids is not None else {
        "image__iteration": iteration}
    last_review_id = Review.objects.filter(**reviewed_after).aggregate(last=Max("id"))["last"] or 0

    for _image_id, (boxes, proposals, reviews) in _merged(
        _stream(_boxes(scope)), _stream(_proposals(scope, model_version)), _stream(_reviews(scope)),
    ):
        label_of = {row[1]: row[2] for row in proposals}  # proposal id -> its label id
        truth = [(row[1], row[2:6]) for row in boxes]
        detections = [Detection(row[2], row[7], row[3:7]) for row in proposals]
        for item in evaluation.match_image(truth, detections):
            counts = per_label[item.label]
            counts["hits" if item.hit else "misses"][min(max(int(item.confidence), 0), BINS - 1)] += 1
            if item.confidence >= thresholds.get(item.label, DEFAULT_THRESHOLD):
                counts["tp" if item.hit else "fp"] += 1
        for row in boxes:
            per_label[row[1]]["truth"] += 1
            origins[row[6]] += 1
            if row[8] and row[7] in label_of:
                relabels[f"{label_of[row[7]]}>{row[1]}"] += 1
        latest = []
        for row in reviews:
            _timed(reviewers[str(row[2])], row[3])
            latest = row[4]
        if isinstance(latest, str):
            latest = json.loads(latest)
        decided = {d.get("proposal"): _verdict(d) for d in latest or () if d.get("proposal") in label_of}
        for proposal_id in label_of:
            verdicts[decided.get(proposal_id) or "undecided"] += 1

    return {
        "format": FORMAT,
        "model_version": model_version.pk,
        "thresholds": {str(k): v for k, v in thresholds.items()},
        "labels": {str(k): v for k, v in per_label.items()},
        "verdicts": dict(verdicts),
        "origins": dict(origins),
        "relabels": dict(relabels),
        "reviewers": {k: {**v, "tenths": {str(t): n for t, n in v["tenths"].items()}}
                      for k, v in reviewers.items()},
        "last_review_id": last_review_id,
    }


def _label_counts():
    return {"truth": 0, "tp": 0, "fp": 0, "hits": [0] * BINS, "misses": [0] * BINS}


def _timed(reviewer, elapsed_ms):
    reviewer["reviews"] += 1
    if elapsed_ms >= MIN_HUMAN_MS:
        reviewer["timed"] += 1
        reviewer["elapsed_ms"] += elapsed_ms
        reviewer["tenths"][(elapsed_ms + 50) // 100] += 1


def _scope(iteration, image_ids):
    scope = {"image__iteration": iteration, "image__status": Image.Status.REVIEWED}
    if image_ids is not None:
        scope["image_id__in"] = sorted(image_ids)
    return scope


def _boxes(scope):
    return (
        Box.objects.filter(**scope).order_by("image_id", "id")
        .values_list("image_id", "label_id", "left", "top", "width", "height", "origin", "proposal_id",
                     "relabeled")
    )


def _proposals(scope, model_version):
    # Image-level proposals (no box) are never shown to reviewers and cannot match a box.
    return (
        Proposal.objects.filter(model_version=model_version, left__isnull=False, **scope)
        .order_by("image_id", "id")
        .values_list("image_id", "id", "label_id", "left", "top", "width", "height", "confidence")
    )


def _reviews(scope):
    # Every review counts as work done; the last one of a reviewed image holds its decisions.
    return (
        Review.objects.filter(**scope).order_by("image_id", "id")
        .values_list("image_id", "id", "reviewer_id", "elapsed_ms", "decisions")
    )


def _stream(queryset):
    """(image id, [rows]) in image order: the query's plain rows, fetched in chunks (a server-side
    cursor on PostgreSQL) without Django's per-value converters."""
    sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    with connections[queryset.db].chunked_cursor() as cursor:
        cursor.execute(sql, params)
        rows = iter(lambda: cursor.fetchmany(CHUNK), [])
        for image_id, group in groupby((row for chunk in rows for row in chunk), key=itemgetter(0)):
            yield image_id, list(group)


def _merged(*streams):
    """(image id, [rows of each stream]) for every image in any of the image-ordered streams."""
    heads = [next(stream, None) for stream in streams]
    while True:
        present = [head[0] for head in heads if head is not None]
        if not present:
            return
        image_id = min(present)
        rows = []
        for index, head in enumerate(heads):
            if head is not None and head[0] == image_id:
                rows.append(head[1])
                heads[index] = next(streams[index], None)
            else:
                rows.append([])
        yield image_id, rows


def _add(total, part):
    """Stored counts plus those of more images (a fold-in): every count is a sum."""
    merged = json.loads(json.dumps(total))
    for key, counts in part["labels"].items():
        into = merged["labels"].setdefault(key, _label_counts())
        for field in ("truth", "tp", "fp"):
            into[field] += counts[field]
        for field in ("hits", "misses"):
            into[field] = [a + b for a, b in zip(into[field], counts[field], strict=True)]
    for section in ("verdicts", "origins", "relabels"):
        for key, count in part[section].items():
            merged[section][key] = merged[section].get(key, 0) + count
    for key, stats in part["reviewers"].items():
        into = merged["reviewers"].setdefault(key, {"reviews": 0, "timed": 0, "elapsed_ms": 0, "tenths": {}})
        for field in ("reviews", "timed", "elapsed_ms"):
            into[field] += stats[field]
        for tenth, count in stats["tenths"].items():
            into["tenths"][tenth] = into["tenths"].get(tenth, 0) + count
    merged["last_review_id"] = max(total["last_review_id"], part["last_review_id"])
    return merged


# -- what people read -----------------------------------------------------------------------------

def scores(tp, fp, fn):
    counts = evaluation.Counts(tp, fp, fn)
    return {"precision": round(counts.precision, 4), "recall": round(counts.recall, 4),
            "f1": round(counts.f1, 4), "tp": tp, "fp": fp, "fn": fn}


def report(data, *, labels, users=None, pending=0):
    """The figures people read, from the stored counts. labels: the project's LabelClasses;
    users: {user id: name}; pending: images still to review (for the time left)."""
    names = {label.pk: label.name for label in labels}
    users = users or {}
    per_label, overall = {}, Counter()
    curve_totals = {"hits": [0] * BINS, "misses": [0] * BINS, "truth": 0}
    curves = {}
    for key, counts in sorted(data["labels"].items(), key=lambda item: _label_order(item[0], labels)):
        label_id = int(key)
        fn = counts["truth"] - counts["tp"]
        name = names.get(label_id, f"label {label_id}")
        per_label[name] = {**scores(counts["tp"], counts["fp"], fn), "objects": counts["truth"],
                           "threshold": data["thresholds"].get(key, DEFAULT_THRESHOLD)}
        overall.update(tp=counts["tp"], fp=counts["fp"], fn=fn)
        curves[name] = _curve(counts["hits"], counts["misses"], counts["truth"])
        for side in ("hits", "misses"):
            curve_totals[side] = [a + b for a, b in zip(curve_totals[side], counts[side], strict=True)]
        curve_totals["truth"] += counts["truth"]
    verdicts = data["verdicts"]
    proposals = sum(verdicts.values())
    reviewers, throughput = _throughput(data["reviewers"], users)
    median = throughput["median_seconds"]
    return {
        "model_version": data["model_version"],
        "reviewed": data.get("reviewed"),
        "overall": scores(overall["tp"], overall["fp"], overall["fn"]),
        "per_label": per_label,
        "curve": {"thresholds": list(range(BINS)),
                  "overall": _curve(curve_totals["hits"], curve_totals["misses"], curve_totals["truth"]),
                  "per_label": curves},
        "proposals": {"total": proposals, **verdicts,
                      "shares": {name: round(verdicts[name] / proposals, 4) if proposals else 0.0
                                 for name in VERDICTS}},
        "added": data["origins"].get(Box.Origin.ADDED, 0),
        "boxes": sum(data["origins"].values()),
        "relabels": _relabels(data["relabels"], names),
        "reviewers": reviewers,
        "throughput": throughput,
        "pending": pending,
        "time_left_seconds": round(pending * median, 1) if median is not None else None,
    }


def _label_order(key, labels):
    order = {label.pk: index for index, label in enumerate(labels)}
    return order.get(int(key), len(order)), int(key)


def _curve(hits, misses, truth):
    """[[precision, recall], ...] keeping detections at or above each whole-number threshold;
    precision is None where nothing is kept."""
    points, tp, fp = [None] * BINS, 0, 0
    for threshold in range(BINS - 1, -1, -1):
        tp += hits[threshold]
        fp += misses[threshold]
        precision = round(tp / (tp + fp), 4) if tp + fp else None
        recall = round(tp / truth, 4) if truth else 0.0
        points[threshold] = [precision, recall]
    return points


def _relabels(pairs, names):
    top = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:TOP_RELABELS]
    result = []
    for key, count in top:
        source, target = (int(part) for part in key.split(">"))
        result.append({"from": names.get(source, str(source)), "to": names.get(target, str(target)),
                       "count": count})
    return result


def _throughput(reviewers, users):
    rows, every = [], Counter()
    totals = {"reviews": 0, "timed": 0, "elapsed_ms": 0}
    for key, stats in reviewers.items():
        tenths = Counter({int(t): n for t, n in stats["tenths"].items()})
        every.update(tenths)
        for field in totals:
            totals[field] += stats[field]
        rows.append({"reviewer": users.get(int(key), f"user {key}"), **_pace(stats, tenths)})
    rows.sort(key=lambda row: (-row["reviews"], row["reviewer"]))
    return rows, _pace(totals, every)


def _pace(stats, tenths):
    """reviews, median seconds per image and images per hour of time spent in the editor."""
    median = _median(tenths)
    seconds = stats["elapsed_ms"] / 1000
    return {
        "reviews": stats["reviews"],
        "median_seconds": None if median is None else round(median / 10, 1),
        "images_per_hour": round(stats["timed"] * 3600 / seconds, 1) if seconds else None,
    }


def _median(histogram):
    """The median of a {value: count} histogram (the mean of the middle two for an even count)."""
    total = sum(histogram.values())
    if not total:
        return None
    middle, seen, low = (total - 1) // 2, 0, None
    for value in sorted(histogram):
        seen += histogram[value]
        if low is None and seen > middle:
            low = value
        if seen > total // 2:
            return (low + value) / 2 if total % 2 == 0 else value
    return low


# -- the cache ------------------------------------------------------------------------------------

def with_state(iterations):
    """The iterations of a queryset, each with what its metrics depend on, in two queries for any
    number of them: its newest review time and its proposing model's newest proposal (one index
    lookup each), and its image and reviewed counts (from the maintained counters)."""
    iterations = list(iterations.select_related(PROPOSER_FIELD).annotate(
        last_reviewed=Subquery(
            Image.objects.filter(iteration=OuterRef("pk"), reviewed_at__isnull=False)
            .order_by("-reviewed_at").values("reviewed_at")[:1]),
        newest_proposal=Subquery(
            Proposal.objects.filter(model_version=OuterRef(f"{PROPOSER_FIELD}_id"))
            .order_by("-id").values("id")[:1]),
    ))
    counts = image_counts([iteration.pk for iteration in iterations])
    for iteration in iterations:
        iteration.image_count = counts[iteration.pk]["total"]
        iteration.reviewed_count = counts[iteration.pk]["reviewed"]
    return iterations


def signature(iteration, model_version, labels):
    """The state an iteration's stored metrics were computed from (iteration from with_state)."""
    digest = hashlib.sha1(
        json.dumps(sorted(_thresholds(model_version, labels).items())).encode(), usedforsecurity=False
    ).hexdigest()[:12]
    last = iteration.last_reviewed
    return (f"{FORMAT}:{model_version.pk}:{iteration.newest_proposal or 0}:{digest}:"
            f"{iteration.reviewed_count}:{last.timestamp() if last else '-'}")


def _stem(signature):
    """The part of a signature a fold-in must find unchanged: format, model, proposals, thresholds."""
    return signature.rsplit(":", 2)[0]


def current(iterations, *, labels, schedule=None):
    """{iteration id: stored counts} for the iterations (from with_state) that have a proposing
    model. Fresh ones are read (one query); where only a few first reviews landed, their images are
    folded in; anything else is computed again in one pass, here for up to INLINE_IMAGES reviewed
    images, else by schedule(iteration, model_version) in the background when given (the stored
    counts are returned meanwhile, with "stale": True, or None when there are none yet)."""
    iterations = [iteration for iteration in iterations if proposer_id(iteration)]
    if not iterations:
        return {}
    stored = {
        (row.iteration_id, row.model_version_id): row for row in IterationMetrics.objects.filter(
            iteration_id__in=[iteration.pk for iteration in iterations]
        ).only("iteration_id", "model_version_id", "signature", "data", "refresh_queued_at")
    }
    result = {}
    for iteration in iterations:
        model_version = proposer(iteration)
        row = stored.get((iteration.pk, model_version.pk))
        if row is not None and row.signature == signature(iteration, model_version, labels):
            result[iteration.pk] = row.data
        elif schedule is not None and _too_large(iteration, row):
            _queue(iteration, model_version, row, schedule)
            result[iteration.pk] = {**row.data, "stale": True} if row is not None and row.data else None
        else:
            result[iteration.pk] = refresh(iteration, model_version, labels=labels, base=row)
    return result


def _too_large(iteration, row):
    """Whether bringing the stored counts up to date takes longer than a page should wait."""
    if row is None or "reviewed" not in row.data:
        return iteration.reviewed_count > INLINE_IMAGES
    new = iteration.reviewed_count - row.data["reviewed"]
    return iteration.reviewed_count > INLINE_IMAGES and not 0 < new <= INLINE_IMAGES


def _queue(iteration, model_version, row, schedule):
    """Queue one background pass, not one per page view (again once a queued one seems lost)."""
    now = timezone.now()
    if row is not None and row.refresh_queued_at and now - row.refresh_queued_at < REQUEUE_AFTER:
        return
    if row is None:
        row = IterationMetrics.objects.create(iteration=iteration, model_version=model_version,
                                              signature="", data={}, refresh_queued_at=now)
    else:
        IterationMetrics.objects.filter(pk=row.pk).update(refresh_queued_at=now)
    schedule(iteration, model_version)


def refresh(iteration, model_version, *, labels=None, base=None):
    """Bring the stored counts of model_version on the iteration up to date and return them."""
    labels = list(iteration.project.labels.all()) if labels is None else labels
    if base is None:
        base = IterationMetrics.objects.filter(iteration=iteration, model_version=model_version).first()
    data, measured = _measure(iteration, model_version, labels, base=base)
    IterationMetrics.objects.update_or_create(
        iteration=iteration, model_version=model_version,
        defaults={"signature": measured, "data": data, "computed_at": timezone.now(),
                  "refresh_queued_at": None},
    )
    return data


def _measure(iteration, model_version, labels, *, base=None):
    """(counts, the signature of the state they describe), read in one consistent snapshot: the
    stored counts (base) plus the images first reviewed since, or else a whole pass."""
    with _snapshot(IterationMetrics.objects.db):
        (state,) = with_state(Iteration.objects.filter(pk=iteration.pk))
        measured = signature(state, model_version, labels)
        data = _folded(state, model_version, labels, base, measured) if base and base.data else None
        if data is None:
            data = compute(state, model_version, labels)
            data["reviewed"] = state.reviewed_count
    return data, measured


@contextmanager
def _snapshot(alias):
    """One read snapshot for the pass's queries, without holding a write lock: REPEATABLE READ on
    PostgreSQL, a deferred read transaction on SQLite (WAL). Inside a transaction already (tests,
    atomic requests), that one is used."""
    connection = connections[alias]
    if connection.in_atomic_block or connection.vendor not in ("postgresql", "sqlite"):
        yield
        return
    if connection.vendor == "postgresql":
        with transaction.atomic(using=alias):
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield
        return
    with connection.cursor() as cursor:
        cursor.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("COMMIT")


def _folded(state, model_version, labels, base, measured):
    """The stored counts plus the images first reviewed since, or None when anything else changed
    (a correction, an import, another model, proposals or thresholds): then a whole pass is due."""
    data = base.data
    if data.get("format") != FORMAT or "reviewed" not in data or _stem(base.signature) != _stem(measured):
        return None
    image_ids = set(Review.objects.filter(image__iteration=state, id__gt=data["last_review_id"])
                    .values_list("image_id", flat=True))
    if not image_ids or data["reviewed"] + len(image_ids) != state.reviewed_count:
        return None
    if Review.objects.filter(image_id__in=image_ids, id__lte=data["last_review_id"]).exists():
        return None  # a correction of an image already counted
    if Image.objects.filter(pk__in=image_ids, status=Image.Status.REVIEWED).count() != len(image_ids):
        return None
    merged = _add(data, compute(state, model_version, labels, image_ids=image_ids))
    merged["reviewed"] = state.reviewed_count
    return merged


def for_iteration(iteration, model_version=None):
    """The figures of one iteration (for the command line): model_version defaults to the one
    that proposed on it; another model is measured without touching the stored metrics."""
    labels = list(iteration.project.labels.all())
    (iteration,) = with_state(Iteration.objects.filter(pk=iteration.pk))
    shown = proposer(iteration)
    model_version = model_version or shown
    if model_version is None:
        return None
    if shown is not None and model_version.pk == shown.pk:
        data = current([iteration], labels=labels)[iteration.pk]
    else:
        data = {**compute(iteration, model_version, labels), "reviewed": iteration.reviewed_count}
    users = usernames([data])
    pending = iteration.image_count - iteration.reviewed_count
    return {"iteration": str(iteration), "model": model_version.name,
            **report(data, labels=labels, users=users, pending=pending)}


def usernames(stored):
    """{user id: username} of every reviewer in the stored counts given, in one query."""
    ids = {int(key) for data in stored for key in data["reviewers"]}
    if not ids:
        return {}
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
