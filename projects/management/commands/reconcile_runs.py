from django.core.management.base import BaseCommand

from projects.runs import reconcile, stale_seconds


class Command(BaseCommand):
    help = (
        "Mark failed the background runs (imports, proposal runs, exports, training) whose worker "
        "died: their task record has ended, or they have been silent for LOUPE_RUN_STALE_SECONDS. "
        "Pages do this as they poll; run it from cron to catch runs nobody is watching."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--stale-after", type=int, default=None, metavar="SECONDS",
            help=f"silence after which a run is dead (default: LOUPE_RUN_STALE_SECONDS, {stale_seconds()})",
        )

    def handle(self, *args, stale_after, **options):
        marked = reconcile(stale_after=stale_after)
        for item in marked:
            self.stdout.write(f"failed {item}")
        self.stdout.write(f"{len(marked)} run(s) marked failed.")
