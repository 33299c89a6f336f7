from django.core.management.base import BaseCommand, CommandError

from projects.models import Project
from projects.transfer import write_project


class Command(BaseCommand):
    help = ("Write a whole project (labels, members, model versions, iterations, image addresses, "
            "proposals, boxes, reviews) to a JSON file for import_project on another installation. "
            "e.g. export_project logos logos.json")

    def add_arguments(self, parser):
        parser.add_argument("project", metavar="PROJECT")
        parser.add_argument("file", metavar="FILE")

    def handle(self, *args, project, file, **options):
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"no project {project!r}")
        try:
            with open(file, "w", encoding="utf-8") as handle:
                write_project(found, handle)
        except OSError as error:
            raise CommandError(f"cannot write {file}: {error.strerror or error}") from None
        self.stdout.write(self.style.SUCCESS(f"Wrote project {found.slug} to {file}."))
