import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from projects.transfer import TransferError, import_project


class Command(BaseCommand):
    help = ("Create a project from a file written by export_project; nothing is written unless all "
            "of it imports. e.g. import_project logos.json [--slug logos-copy]")

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--slug", help="import under this project name instead of the file's")

    def handle(self, *args, file, slug, **options):
        try:
            with open(file, encoding="utf-8-sig") as handle:
                document = json.load(handle)
        except OSError as error:
            raise CommandError(f"cannot read {file}: {error.strerror or error}") from None
        except (ValueError, RecursionError) as error:
            raise CommandError(f"{file} is not a Loupe project file (not JSON: {error})") from None
        try:
            project = import_project(document, slug=slug)
        except (TransferError, ValidationError, KeyError, TypeError) as error:
            raise CommandError(f"cannot import {file}: {error}; nothing was imported") from None
        counts = {
            "iterations": project.iterations.count(),
            "images": sum(i.images.count() for i in project.iterations.all()),
        }
        self.stdout.write(self.style.SUCCESS(f"Imported project {project.slug}: {counts['iterations']} "
                                             f"iterations, {counts['images']} images."))
