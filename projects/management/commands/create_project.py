from django.core.management.base import BaseCommand, CommandError

from projects.provisioning import ProjectSetupError, create_project, parse_labels


class Command(BaseCommand):
    help = "Create a project with its labels, e.g. create_project logos --labels aws-logo,smile-logo"

    def add_arguments(self, parser):
        parser.add_argument("slug", help="short name used in URLs and commands, e.g. 'logos'")
        parser.add_argument("--name", default="", help="display name (defaults to the slug)")
        parser.add_argument("--labels", default="", help="comma-separated label names")
        parser.add_argument("--region", default=None, help="AWS region of the project (default: AWS_REGION)")
        parser.add_argument("--bucket", default="", help="S3 bucket holding the images")

    def handle(self, *args, slug, name, labels, region, bucket, **options):
        try:
            project = create_project(
                slug=slug, name=name, labels=parse_labels(labels), region=region, bucket=bucket
            )
        except ProjectSetupError as error:
            raise CommandError(str(error)) from None
        names = ", ".join(project.labels.values_list("name", flat=True)) or "no labels"
        self.stdout.write(self.style.SUCCESS(f"Created project {project.slug} ({names})."))
