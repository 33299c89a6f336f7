"""The queries and figures behind the project dashboard's sections: one row per iteration with its
lineage and Loupe's measurement of the model that proposed on it, and the charts.

A constant number of queries for any number of iterations and models (plus a metrics pass for an
iteration whose reviews changed since its figures were stored).
"""

from dataclasses import dataclass, field

from projects.dashboard import charts, metrics

VERDICT_COLORS = {"accepted": "#15803d", "adjusted": "#f59e0b", "rejected": "#b91c1c",
                  "hidden": "#9ca3af", "undecided": "#e5e7eb"}
VERDICT_NAMES = {"accepted": "accepted unchanged", "adjusted": "adjusted", "rejected": "rejected",
                 "hidden": "hidden below the slider", "undecided": "not reviewed against"}


@dataclass
class IterationRow:
    iteration: object
    model: object  # the model whose proposals reviewers saw here, or None
    figures: dict | None  # metrics.report(), when a model proposed here
    trained: list = field(default_factory=list)  # models trained from this iteration
    measuring: bool = False  # a background pass is bringing the figures up to date

    @property
    def images(self):
        return self.iteration.image_count

    @property
    def reviewed(self):
        return self.iteration.reviewed_count

    @property
    def percent(self):
        return int(100 * self.reviewed / self.images) if self.images else 0

    @property
    def measured_f1(self):
        if self.figures is None or not self.reviewed:
            return None
        return self.figures["overall"]["f1"]


def annotated_iterations(project):
    """The project's iterations with their image and reviewed counts and their metrics' state."""
    return metrics.with_state(project.iterations.order_by("created_at", "id"))


def dashboard(project, *, models, selected_name=None, schedule=None):
    """Everything the owner's project page shows but the model controls. models: the project's
    model versions, oldest first; schedule: how to refresh a large iteration's figures in the
    background (see metrics.current)."""
    iterations = list(annotated_iterations(project))
    labels = list(project.labels.all())
    stored = metrics.current(iterations, labels=labels, schedule=schedule)
    users = metrics.usernames(data for data in stored.values() if data)
    rows = []
    for iteration in iterations:
        data = stored.get(iteration.pk)
        figures = None
        if data is not None:
            pending = iteration.image_count - iteration.reviewed_count
            figures = metrics.report(data, labels=labels, users=users, pending=pending)
        trained = [model for model in models if model.trained_from_id == iteration.pk]
        rows.append(IterationRow(iteration=iteration, model=metrics.proposer(iteration), figures=figures,
                                 trained=trained, measuring=iteration.pk in stored and (
                                     data is None or bool(data.get("stale")))))
    selected = _selected(rows, selected_name)
    return {
        "labels": labels,
        "iterations": iterations,
        "rows": rows,
        "chains": lineage(rows),
        "selected": selected,
        "f1_chart": f1_chart(rows, models),
        **(detail_charts(selected, labels) if selected else {}),
    }


def _selected(rows, name):
    measured = [row for row in rows if row.figures is not None]
    if name:
        return next((row for row in measured if row.iteration.name == name), None)
    reviewed = [row for row in measured if row.reviewed]
    return (reviewed or measured or [None])[-1]


def lineage(rows):
    """The chains v1 -> model v1 -> v2 -> model v2 ...: [[("iteration"|"model", name)]], linking an
    iteration to the models trained from it and a model to the iterations it proposed on."""
    chains, current = [], None
    for row in rows:
        node = ("iteration", row.iteration.name)
        if row.model is not None and current and current[-1] == ("model", row.model.name):
            current.append(node)
        else:
            current = ([("model", row.model.name)] if row.model is not None else []) + [node]
            chains.append(current)
        current.extend(("model", model.name) for model in row.trained)
    return chains


def f1_chart(rows, models):
    """Per model version: its F1 measured by Loupe on the reviewed images of the last iteration it
    proposed on, beside the F1 its training reported."""
    measured = {}
    for row in rows:
        if row.model is not None and row.measured_f1 is not None:
            measured[row.model.pk] = row.measured_f1
    groups = [(model.name, [measured.get(model.pk), model.f1]) for model in models]
    return charts.bars("f1-versions", "F1 across model versions", groups,
                       ["measured by Loupe on reviewed images", "reported by its training"])


def detail_charts(row, labels):
    figures = row.figures
    colors = {label.name: label.color for label in labels}
    per_label = figures["per_label"]
    lines = []
    for name, points in figures["curve"]["per_label"].items():
        scores = per_label[name]
        kept = scores["tp"] + scores["fp"]
        lines.append((f"{name} (threshold {scores['threshold']:g})", colors.get(name, "#6b7280"), points,
                      [scores["precision"], scores["recall"]] if kept else None))
    rates = [(row["reviewer"], [row["images_per_hour"]]) for row in figures["reviewers"]]
    fastest = max((rate for _name, (rate,) in rates if rate is not None), default=0)
    proposals = figures["proposals"]
    return {
        "time_left": duration(figures["time_left_seconds"]),
        "pr_chart": charts.curves(
            "pr-curve", f"Precision and recall of {row.model.name} on {row.iteration.name} "
            "by confidence threshold (dots: the current thresholds)", lines),
        "label_chart": charts.bars(
            "per-label", f"{row.model.name} on {row.iteration.name}, per label",
            # A label with no object and no proposal has nothing to measure: no bars for it.
            [(name, [s["precision"], s["recall"], s["f1"]]) for name, s in per_label.items()
             if s["tp"] or s["fp"] or s["fn"]],
            ["precision", "recall", "F1"]),
        "throughput_chart": charts.bars(
            "throughput", "Reviewer throughput (images per hour in the editor)", rates, ["images/hour"],
            maximum=charts.nice_ceiling(fastest), fmt="{:.0f}"),
        "verdict_chart": charts.shares(
            "verdicts", f"What reviewers did with {row.model.name}'s {proposals['total']} proposals",
            [(VERDICT_NAMES[name], proposals[name], VERDICT_COLORS[name]) for name in metrics.VERDICTS]),
    }


def duration(seconds):
    """12 s, 5 min, 3 h 20 min: a time left as people say it."""
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
