import json
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from projects.demo import data as demodata
from projects.demo import workflow as demo
from projects.local_model.learning import train_local_model
from projects.local_model.training import TrainingError
from projects.management.progress import ProgressBar
from projects.models import Membership
from projects.provisioning import ProjectSetupError
from reviewer import simulation
from reviewer.editor.reviews import ReviewError

SIMULATED_REVIEWERS = ("demo-loop-reviewer-1", "demo-loop-reviewer-2")
SIZES = {"full": demodata.SET_SIZES, "reduced": demodata.REDUCED_SET_SIZES}


class Command(BaseCommand):
    help = (
        "Run the whole labeling loop headless in a throwaway project: local model v1 from the 8 "
        "labeled demo images, proposals on v2, simulated reviewers fixing them to the generated "
        "truth through the review service, the v2 manifest export, model v2 from v1+v2, and F1 of "
        "both on the test set. --json ends the output with the figures as one JSON line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the figures as a last JSON line")
        parser.add_argument("--size", choices=sorted(SIZES), default="full",
                            help="full: 8/30/20 images (v1/v2/test); reduced: 4/6/4, for quick checks")
        parser.add_argument("--seed", type=int, default=demodata.DEFAULT_SEED)
        parser.add_argument("--keep", action="store_true",
                            help="keep the throwaway project to look at it in the browser")

    def handle(self, *args, size, seed, keep, **options):
        started = time.monotonic()
        project = demo.ensure_project(slug=demo.free_slug("demo-loop"), name="Demo loop")
        try:
            with tempfile.TemporaryDirectory() as folder:
                figures = self._loop(project, Path(folder), SIZES[size], seed)
        except (demo.DemoError, simulation.SimulationError, TrainingError, ProjectSetupError, ReviewError,
                OSError) as error:
            raise CommandError(f"demo loop failed: {error}") from None
        finally:
            if not keep:
                demo.delete_project(project)
        self._table(figures)
        where = f"kept as project {project.slug}" if keep else "throwaway project removed"
        self.stdout.write(f"({time.monotonic() - started:.0f} s, {where})")
        if options["json"]:
            self.stdout.write(json.dumps({
                name: {"train_images": model.training_images, "f1": round(model.f1, 3)}
                for name, model in figures["models"].items()
            }))

    def _loop(self, project, folder, sizes, seed):
        say = self.stdout.write
        sets = demodata.generate_demo_data(folder=folder, seed=seed, sizes=sizes)
        v1, v2, test = (demo.ensure_iteration(project, name) for name in ("v1", "v2", "test"))
        for iteration, labeled in ((v1, True), (v2, False), (test, True)):
            demo.load_set(iteration=iteration, folder=folder, set_name=iteration.name, labeled=labeled)
        say(f"{project.slug}: imported v1 ({len(sets['v1'])} labeled), v2 ({len(sets['v2'])}), "
            f"test ({len(sets['test'])} labeled)")
        model_v1 = train_local_model(project=project, iterations=[v1], name="v1", held_out=test,
                                     progress=ProgressBar("Training v1"))
        run = demo.propose(iteration=v2, model_version=model_v1, progress=ProgressBar("Proposing on v2"))
        say(f"model v1 proposed {run.proposals} boxes on {run.done} v2 images")
        truth = {image.name: image.objects for image in sets["v2"]}
        reviewed = simulation.simulate_reviews(iteration=v2, truth=truth, reviewers=self._reviewers(project),
                                         progress=ProgressBar("Reviewing v2"))
        counts = demo.review_counts(v2)
        say(f"simulated reviewers reviewed {reviewed} images: {counts['accepted']} proposals accepted, "
            f"{counts['adjusted']} adjusted, {counts['rejected']} rejected, {counts['added']} boxes added")
        out = settings.VAR_DIR / "demo-loop" / f"{project.slug}-v2.manifest"
        out.parent.mkdir(parents=True, exist_ok=True)
        report = demo.export_manifest(iteration=v2, path=out)
        say(f"exported {out} ({report.lines} lines, {report.boxes} boxes): accepted by the validator")
        model_v2 = train_local_model(project=project, iterations=[v1, v2], name="v2", held_out=test,
                                     progress=ProgressBar("Training v2"))
        return {"models": {"v1": model_v1, "v2": model_v2}, "test_images": len(sets["test"])}

    def _reviewers(self, project):
        users = []
        for username in SIMULATED_REVIEWERS:
            # Inactive, with no usable password: nobody can log in as a simulated reviewer.
            user, created = get_user_model().objects.get_or_create(
                username=username, defaults={"is_active": False}
            )
            if created:
                user.set_unusable_password()
                user.save()
            Membership.objects.get_or_create(project=project, user=user,
                                             defaults={"role": Membership.Role.REVIEWER})
            users.append(user)
        return users

    def _table(self, figures):
        f1_title = f"F1 on test ({figures['test_images']} images)"
        self.stdout.write(f"{'model':<6} {'training images':>15} {f1_title:>24}")
        for name, model in figures["models"].items():
            self.stdout.write(f"{name:<6} {model.training_images:>15} {model.f1:>24.3f}")
