from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from projects.demo import data as demodata
from projects.demo import workflow as demo
from projects.local_model.training import TrainingError
from projects.management.progress import ProgressBar
from projects.provisioning import ProjectSetupError, add_member

DEMO_USERS = [("demo-owner", "owner"), ("demo-reviewer", "reviewer")]
DEMO_PASSWORD = "loupe-demo"
SLUG = "logos"


class Command(BaseCommand):
    help = (
        "Set up the demo project 'logos': generate the demo images (var/demo), import v1 and test "
        "as labeled, train local model v1, propose on v2 with it, create the demo logins. "
        "Running it again reuses everything that exists."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000",
                            help="where Loupe will be served, for the printed links")
        parser.add_argument("--size", choices=["full", "reduced"], default="full",
                            help="full: 8/30/20 images (v1/v2/test); reduced: 4/6/4, for quick checks")

    def handle(self, *args, url, size, **options):
        folder = settings.VAR_DIR / "demo"
        sizes = demodata.SET_SIZES if size == "full" else demodata.REDUCED_SET_SIZES
        try:
            demodata.generate_demo_data(folder=folder, sizes=sizes,
                                        progress=ProgressBar("Generating demo images"))
            project = demo.ensure_project(slug=SLUG, name="Logos demo")
            v1, v2, test = (demo.ensure_iteration(project, name) for name in ("v1", "v2", "test"))
            for iteration, labeled in ((v1, True), (v2, False), (test, True)):
                demo.load_set(iteration=iteration, folder=folder, set_name=iteration.name, labeled=labeled)
            model = demo.ensure_model(project=project, name="v1", iterations=[v1], held_out=test,
                                      progress=ProgressBar("Training local model v1"))
            demo.propose(iteration=v2, model_version=model, progress=ProgressBar("Proposing on v2"))
            self._users(project)
        except (demo.DemoError, TrainingError, ProjectSetupError, OSError) as error:
            raise CommandError(f"demo setup failed: {error}") from None
        self._summary(project, model, v2, url.rstrip("/"))

    def _users(self, project):
        users = get_user_model().objects
        for username, role in DEMO_USERS:
            user, created = users.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            add_member(project=project, username=username, role=role)

    def _summary(self, project, model, v2, url):
        proposals = model.proposals.filter(image__iteration=v2).count()
        f1 = f"F1 {model.f1:.2f} on the test set" if model.f1 is not None else "no F1 yet"
        out = self.stdout.write
        out(self.style.SUCCESS(f"Demo project '{project.slug}' is ready."))
        out(f"  v1: {model.training_images} labeled images trained local model v1 ({f1}).")
        out(f"  v2: {v2.images.count()} images with {proposals} proposals from v1, waiting for review.")
        out("Log in at " + f"{url}/login/")
        for username, role in DEMO_USERS:
            out(f"  {username} / {DEMO_PASSWORD} ({role})")
        out("Then:")
        out(f"  1. as demo-reviewer, review v2: {url}/review/{project.slug}/v2/next")
        out(f"  2. as demo-owner, on {url}/p/{project.slug}/i/v2/ download the manifest and use "
            "'Train from this iteration' (local, test on: test) to get v2 and its F1.")
        out("  Headless, the whole loop with simulated reviewers: manage.py demo_loop")
