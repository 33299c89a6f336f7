import json

from django.core.management.base import BaseCommand, CommandError

from projects.dashboard import metrics
from projects.provisioning import ProjectSetupError, find_iteration


class Command(BaseCommand):
    help = (
        "How good the model that proposed on an iteration was, measured on its reviewed images "
        "(IoU >= 0.5 at the model's per-label thresholds), what reviewers did with its proposals and "
        "how fast they review, e.g. metrics logos/v2 [--model-version v1] [--json]"
    )

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="PROJECT/ITERATION")
        parser.add_argument("--model-version", metavar="NAME",
                            help="measure this model's proposals (default: the one reviewers were shown)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, ref, model_version, json, **options):
        try:
            iteration = find_iteration(ref)
        except ProjectSetupError as error:
            raise CommandError(str(error)) from None
        model = None
        if model_version:
            model = iteration.project.model_versions.filter(name=model_version).first()
            if model is None:
                raise CommandError(
                    f"project {iteration.project.slug!r} has no model version {model_version!r}"
                )
        figures = metrics.for_iteration(iteration, model)
        if figures is None:
            raise CommandError(
                f"no model proposed on {iteration}: name one with --model-version"
            )
        if json:
            self.stdout.write(_dumps(figures))
            return
        self.stdout.write(as_text(figures))


def _dumps(figures):
    return json.dumps(figures, sort_keys=False)


def as_text(figures):
    def score_row(name, row):
        return (f"  {name:<24} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['f1']:>6.3f} "
                f"{row['tp']:>6} {row['fp']:>6} {row['fn']:>6}")

    if not figures["reviewed"]:
        return (f"Model {figures['model']} on {figures['iteration']}: no reviewed images yet, nothing to "
                f"measure ({figures['pending']} images to review).")
    lines = [f"Model {figures['model']} on {figures['iteration']}, {figures['reviewed']} reviewed images "
             "(IoU >= 0.5, at the model's thresholds)",
             f"  {'label':<24} {'precision':>9} {'recall':>7} {'F1':>6} {'TP':>6} {'FP':>6} {'FN':>6}"]
    for name, row in figures["per_label"].items():
        lines.append(score_row(f"{name} (>= {row['threshold']:g})", row))
    lines.append(score_row("overall", figures["overall"]))
    proposals = figures["proposals"]
    shares = proposals["shares"]
    lines.append(
        f"Proposals: {proposals['total']}: accepted unchanged {proposals['accepted']} "
        f"({shares['accepted']:.0%}), adjusted {proposals['adjusted']} ({shares['adjusted']:.0%}), "
        f"rejected {proposals['rejected']} ({shares['rejected']:.0%}), hidden below the slider "
        f"{proposals['hidden']} ({shares['hidden']:.0%}), not reviewed {proposals['undecided']}"
    )
    lines.append(f"Boxes added for missed objects: {figures['added']}")
    if figures["relabels"]:
        lines.append("Relabeled: " + ", ".join(
            f"{pair['from']} -> {pair['to']} ({pair['count']})" for pair in figures["relabels"]))
    pace = figures["throughput"]
    lines.append(f"Reviews: {pace['reviews']}, median {_seconds(pace['median_seconds'])} per image, "
                 f"{_rate(pace['images_per_hour'])}")
    for row in figures["reviewers"]:
        lines.append(f"  {row['reviewer']:<24} {row['reviews']:>6} reviews, median "
                     f"{_seconds(row['median_seconds'])}, {_rate(row['images_per_hour'])}")
    left = figures["time_left_seconds"]
    lines.append(f"Left: {figures['pending']} images"
                 + (f", about {left / 3600:.1f} h of one reviewer's time" if left is not None else ""))
    return "\n".join(lines)


def _seconds(value):
    return "-" if value is None else f"{value:g} s"


def _rate(value):
    return "- images/hour" if value is None else f"{value:g} images/hour"
