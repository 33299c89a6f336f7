"""Metrics from review work: how good the model that proposed on an iteration was, judged by the
reviewed boxes as truth, what reviewers did with its proposals, and how fast they review.

The figures come from one pass over the iteration's reviewed images (boxes, the model's proposals
and the reviews, each streamed in image order with values_list; never a query per image), matched
with the evaluation module's rules (same label, IoU >= 0.5, greedy by confidence), so truth that was
imported or came from Ground Truth is measured the same way. The pass keeps only counts (per label
and per whole-number confidence), which are stored in an IterationMetrics row with the signature
of the state they were computed from; `current()` recomputes only when that state changed.
"""

import hashlib
import json
from collections import Counter, defaultdict
from itertools import groupby
from operator import itemgetter

from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from projects.detections import Detection
from projects.local_model import evaluation
from projects.models import DEFAULT_THRESHOLD, Image, IterationMetrics, Proposal
from reviewer.models import Box, Review

FORMAT = 1  # bump when the stored counts change shape: every cached row is then recomputed
BINS = 101  # whole-number confidences 0..100: the precision/recall curve's thresholds
TOP_RELABELS = 5
CHUNK = 5000
VERDICTS = ("accepted", "adjusted", "rejected", "hidden", "undecided")
# Reviews faster than this are bulk or headless saves, not a person's pace: they count as reviews
# but not towards the time figures.
MIN_HUMAN_MS = 1


# -- the few places that know how other parts of the app store things ---------------------------------

# The Iteration field naming that model, for select_related.
PROPOSER_FIELD = "model_version"


def proposer(iteration):
    """The model whose proposals reviewers are shown on this iteration (None: no model yet)."""
    return iteration.model_version


def proposer_id(iteration):
    return iteration.model_version_id


def _thresholds(model_version, labels):
    """{label id: the model's current threshold 0..100} (the label's own, else the default)."""
    stored = model_version.thresholds or {}
    return {label.pk: float(stored.get(label.name, DEFAULT_THRESHOLD)) for label in labels}


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

def compute(iteration, model_version, labels=None):
    """The stored counts (a JSON-ready dict) of model_version's proposals on the iteration."""
    labels = list(iteration.project.labels.all()) if labels is None else labels
    thresholds = _thresholds(model_version, labels)
    per_label = {label_id: _label_counts() for label_id in thresholds}
    verdicts = Counter({name: 0 for name in VERDICTS})
    origins = Counter()
    relabels = Counter()
    reviewers = defaultdict(lambda: {"reviews": 0, "timed": 0, "elapsed_ms": 0, "tenths": Counter()})

    for _image_id, (boxes, proposals, reviews) in _merged(
        _stream(_boxes(iteration)), _stream(_proposals(iteration, model_version)),
        _stream(_reviews(iteration)),
    ):
        label_of = {row[1]: row[2] for row in proposals}  # proposal id -> its label id
        truth = [(row[1], row[2:6]) for row in boxes]
        detections = [Detection(row[2], row[7], row[3:7]) for row in proposals]
        for item in evaluation.match_image(truth, detections):
            counts = per_label.setdefault(item.label, _label_counts())
            counts["hits" if item.hit else "misses"][_bin(item.confidence)] += 1
            if item.confidence >= thresholds.get(item.label, DEFAULT_THRESHOLD):
                counts["tp" if item.hit else "fp"] += 1
        for label_id, _box in truth:
            per_label.setdefault(label_id, _label_counts())["truth"] += 1
        for row in boxes:
            origins[row[6]] += 1
            if row[7] in label_of and row[8]:
                relabels[f"{label_of[row[7]]}>{row[1]}"] += 1
        latest = {}
        for row in reviews:
            _timed(reviewers[str(row[2])], row[3])
            latest = row[4] or []
        decided = {d.get("proposal"): _verdict(d) for d in latest if d.get("proposal") in label_of}
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
    }


def _label_counts():
    return {"truth": 0, "tp": 0, "fp": 0, "hits": [0] * BINS, "misses": [0] * BINS}


def _bin(confidence):
    return min(max(int(confidence), 0), BINS - 1)


def _timed(reviewer, elapsed_ms):
    reviewer["reviews"] += 1
    if elapsed_ms >= MIN_HUMAN_MS:
        reviewer["timed"] += 1
        reviewer["elapsed_ms"] += elapsed_ms
        reviewer["tenths"][(elapsed_ms + 50) // 100] += 1


def _reviewed(iteration):
    return {"image__iteration": iteration, "image__status": Image.Status.REVIEWED}


def _boxes(iteration):
    return (
        Box.objects.filter(**_reviewed(iteration)).order_by("image_id", "id")
        .values_list("image_id", "label_id", "left", "top", "width", "height", "origin", "proposal_id",
                     "relabeled")
    )


def _proposals(iteration, model_version):
    # Image-level proposals (no box) are never shown to reviewers and cannot match a box.
    return (
        Proposal.objects.filter(model_version=model_version, left__isnull=False, **_reviewed(iteration))
        .order_by("image_id", "id")
        .values_list("image_id", "id", "label_id", "left", "top", "width", "height", "confidence")
    )


def _reviews(iteration):
    # Every review counts as work done; the last one of a reviewed image holds its decisions.
    return (
        Review.objects.filter(**_reviewed(iteration)).order_by("image_id", "id")
        .values_list("image_id", "id", "reviewer_id", "elapsed_ms", "decisions")
    )


def _stream(queryset):
    """(image id, [rows]) in image order, fetched in chunks."""
    for image_id, rows in groupby(queryset.iterator(chunk_size=CHUNK), key=itemgetter(0)):
        yield image_id, list(rows)


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

def signatures(iterations):
    """{iteration id: the state its metrics depend on}, in two queries for any number of
    iterations: the images (count, reviewed, review versions, last review time) and the newest
    proposal of each model, plus the model's thresholds over the project's labels."""
    ids = [iteration.pk for iteration in iterations]
    images = {
        row["iteration_id"]: row for row in
        Image.objects.filter(iteration_id__in=ids).order_by().values("iteration_id").annotate(
            total=Count("id"), reviewed=Count("id", filter=Q(status=Image.Status.REVIEWED)),
            versions=Sum("version"), last=Max("reviewed_at"),
        )
    }
    model_ids = {proposer_id(iteration) for iteration in iterations} - {None}
    newest = dict(
        Proposal.objects.filter(model_version_id__in=model_ids).order_by().values("model_version_id")
        .annotate(newest=Max("id")).values_list("model_version_id", "newest")
    )
    result = {}
    for iteration in iterations:
        row = images.get(iteration.pk, {})
        model_id = proposer_id(iteration)
        result[iteration.pk] = (
            f"{FORMAT}:{row.get('total', 0)}:{row.get('reviewed', 0)}:{row.get('versions') or 0}:"
            f"{row['last'].isoformat() if row.get('last') else '-'}:{model_id}:{newest.get(model_id, 0)}"
        )
    return result


def signature_with_thresholds(signature, model_version, labels):
    digest = hashlib.sha1(
        json.dumps(sorted(_thresholds(model_version, labels).items())).encode(), usedforsecurity=False
    ).hexdigest()[:12]
    return f"{signature}:{digest}"


def current(iterations, *, labels):
    """{iteration id: stored counts} for iterations with a proposing model, recomputed where the
    iteration changed since they were stored. Queries: 3, plus a pass per changed iteration."""
    iterations = [iteration for iteration in iterations if proposer_id(iteration)]
    if not iterations:
        return {}
    found = signatures(iterations)
    stored = {
        (row.iteration_id, row.model_version_id): row for row in IterationMetrics.objects.filter(
            iteration_id__in=[iteration.pk for iteration in iterations]
        ).only("iteration_id", "model_version_id", "signature", "data")
    }
    result = {}
    for iteration in iterations:
        model_version = proposer(iteration)
        signature = signature_with_thresholds(found[iteration.pk], model_version, labels)
        row = stored.get((iteration.pk, model_version.pk))
        if row is not None and row.signature == signature:
            result[iteration.pk] = row.data
            continue
        result[iteration.pk] = refresh(iteration, model_version, labels=labels, signature=signature)
    return result


def refresh(iteration, model_version, *, labels, signature):
    data = compute(iteration, model_version, labels)
    IterationMetrics.objects.update_or_create(
        iteration=iteration, model_version=model_version,
        defaults={"signature": signature, "data": data, "computed_at": timezone.now()},
    )
    return data


def for_iteration(iteration, model_version=None):
    """The figures of one iteration (for the command line): model_version defaults to the one
    that proposed on it; another model is measured without touching the cache."""
    labels = list(iteration.project.labels.all())
    shown = proposer(iteration)
    model_version = model_version or shown
    if model_version is None:
        return None
    if shown is not None and model_version.pk == shown.pk:
        data = current([iteration], labels=labels)[iteration.pk]
    else:
        data = compute(iteration, model_version, labels)
    users = usernames([data])
    pending = iteration.images.filter(status=Image.Status.PENDING).count()
    return {"iteration": str(iteration), "model": model_version.name,
            **report(data, labels=labels, users=users, pending=pending)}


def usernames(stored):
    """{user id: username} of every reviewer in the stored counts given, in one query."""
    ids = {int(key) for data in stored for key in data["reviewers"]}
    if not ids:
        return {}
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
