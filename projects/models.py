"""Projects, their labels and members, iterations, images, model versions and proposals.

Coordinates everywhere are pixels of the original image, origin top-left, stored as floats; the
manifest exporter rounds and clamps them.
"""

import random

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from config.env import BUCKET_NAME

slug_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9-]*$", "Use lowercase letters, digits and hyphens (e.g. 'logos')."
)
# Iteration names end up in file names and manifest job names: keep them path-safe.
iteration_name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$", "Use letters, digits, '.', '_' and '-' (e.g. 'v2')."
)

region_validator = RegexValidator(
    r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$", "Enter an AWS region name such as us-east-1."
)
color_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Enter a color as #rrggbb.")
rekognition_project_arn_validator = RegexValidator(
    r"^arn:aws[a-z-]*:rekognition:[a-z0-9-]+:\d{12}:project/[A-Za-z0-9_.-]{1,255}/\d+$",
    "Enter a Rekognition project ARN: arn:aws:rekognition:REGION:ACCOUNT:project/NAME/NUMBER.",
)

LABEL_COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
                "#bfef45", "#fabed4", "#469990"]


# A label's threshold (0..100) when its model version has none of its own.
DEFAULT_THRESHOLD = 50.0


def random_key():
    return random.randint(0, 2**31 - 1)


class ProjectQuerySet(models.QuerySet):
    def visible_to(self, user):
        if user.is_superuser:
            return self.all()
        return self.filter(memberships__user=user)


class Project(models.Model):
    class ReviewOrder(models.TextChoices):
        HARDEST = "hardest", "Hardest first"
        RANDOM = "random", "Random"
        FILE = "file", "File order"

    slug = models.SlugField(max_length=60, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    region = models.CharField(max_length=32, default="us-east-1", validators=[region_validator])
    image_bucket = models.CharField(
        max_length=63, blank=True, help_text="S3 bucket the project's images live in."
    )
    output_location = models.CharField(
        max_length=1024, blank=True,
        help_text="s3://bucket/prefix/ where manifests are published.",
    )
    published_images_uri = models.CharField(
        max_length=1024, blank=True,
        help_text="s3://bucket/prefix/ that locally stored images were copied to; "
        "manifests refer to local images through it.",
    )
    rekognition_project_arn = models.CharField(
        max_length=2048, blank=True, validators=[rekognition_project_arn_validator]
    )
    review_order = models.CharField(
        max_length=16, choices=ReviewOrder.choices, default=ReviewOrder.HARDEST
    )
    labeling_instructions = models.TextField(
        blank=True, help_text="What labelers are told: shown in Ground Truth's worker template."
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.slug

    def clean(self):
        """Every bucket the project names is a valid bucket name on LOUPE_ALLOWED_BUCKETS (the
        settings form, the admin and create_project all come through here)."""
        errors = {}
        if self.image_bucket:
            problem = bucket_problem(self.image_bucket.strip())
            if problem:
                errors["image_bucket"] = problem
        for field in ("output_location", "published_images_uri"):
            value = getattr(self, field).strip()
            if value.startswith("s3://"):
                problem = bucket_problem(value[len("s3://"):].split("/", 1)[0])
                if problem:
                    errors[field] = problem
        if errors:
            raise ValidationError(errors)


def bucket_problem(bucket):
    """Why a project may not use this bucket, or None: S3's naming rules, then the allow-list."""
    if not BUCKET_NAME.match(bucket):
        return "Enter an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)."
    allowed = settings.LOUPE_ALLOWED_BUCKETS
    if allowed and bucket not in allowed:
        return (f"Bucket {bucket!r} is not one this Loupe may use (LOUPE_ALLOWED_BUCKETS: "
                f"{', '.join(allowed)}); ask the administrator to add it.")
    return None


class LabelClass(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    # Rekognition accepts label names up to 255 characters.
    name = models.CharField(max_length=255)
    color = models.CharField(max_length=7, default="#e6194b", validators=[color_validator])
    hotkey = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(9)]
    )
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["project", "order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="label_unique_name"),
            models.UniqueConstraint(
                fields=["project", "hotkey"], name="label_unique_hotkey",
                condition=Q(hotkey__isnull=False),
            ),
            models.CheckConstraint(
                condition=Q(hotkey__isnull=True) | Q(hotkey__gte=1, hotkey__lte=9),
                name="label_hotkey_1_to_9",
            ),
        ]

    def __str__(self):
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        REVIEWER = "reviewer", "Reviewer"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.REVIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user"),
        ]

    def __str__(self):
        return f"{self.user} ({self.role}) in {self.project}"


class Iteration(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="iterations")
    name = models.CharField(max_length=64, validators=[iteration_name_validator])
    # The model whose proposals reviewers are shown in this iteration.
    shown_model = models.ForeignKey(
        "ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="iteration_unique_name"),
        ]

    def __str__(self):
        return f"{self.project.slug}/{self.name}"


def lease_is_free(now):
    """The one rule for an image nobody holds at `now`: no holder, or the lease has run out.
    Image.lease_is_free_at() says the same of a loaded row. The image_lease_set_together
    constraint makes "no holder" and "no expiry" the same thing."""
    return Q(leased_by__isnull=True) | Q(lease_expires_at__lte=now)


def end_leases_of_deleted_user(sender, instance, **kwargs):
    """pre_delete of the user model (connected in ProjectsConfig.ready): the user's leases end,
    holder and expiry in one UPDATE, inside the deletion's transaction and before it.

    Image.leased_by's SET_NULL alone would clear the holder and leave the expiry, which
    image_lease_set_together refuses: Django writes each on_delete field update as its own UPDATE,
    and a CHECK cannot be deferred. After this receiver the SET_NULL finds nothing left to do.
    """
    Image.objects.filter(leased_by=instance).update(leased_by=None, lease_expires_at=None)


class Image(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting review"
        REVIEWED = "reviewed", "Reviewed"

    # No index of its own: the image_queue_* indexes and image_unique_source lead with it.
    iteration = models.ForeignKey(
        Iteration, on_delete=models.CASCADE, related_name="images", db_index=False
    )
    # Either "s3://bucket/key" (the image stays in S3) or a name in Loupe's default storage.
    source = models.CharField(max_length=1024)
    name = models.CharField(max_length=255, help_text="File name shown to people.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    depth = models.PositiveSmallIntegerField(default=3)
    file_size = models.PositiveBigIntegerField(default=0)
    format = models.CharField(max_length=8, default="JPEG")
    # File order within the iteration, and a fixed random key, so every queue order has an index.
    position = models.PositiveIntegerField(default=0)
    random_key = models.PositiveIntegerField(default=random_key)
    # Queue priority, higher first in "hardest first" order: how much the model needs a person
    # here (projects.detections.uncertainty_score).
    priority = models.FloatField(default=0.0)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    no_objects = models.BooleanField(default=False, help_text="Verified to contain no objects.")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # A lease: both set (someone holds the image until then) or both null (image_lease_set_together).
    # Deleting the holder ends the lease through end_leases_of_deleted_user. No index of its own
    # for leased_by: image_lease leads with it.
    leased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", db_index=False,
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Optimistic locking: every saved review bumps it; a submit carrying an older one is stale.
    version = models.PositiveIntegerField(default=0)
    # The newest review's Review.changed, written by the same UPDATE that saves the review, so the
    # owner's list filters on a column instead of looking up each image's latest review. A database
    # default too: raw bulk inserts (COPY) that predate the column leave it out.
    changed = models.BooleanField(default=False, db_default=False,
                                  help_text="The newest review changed the proposals.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["iteration", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["iteration", "source"], name="image_unique_source"),
            models.CheckConstraint(condition=Q(width__gt=0, height__gt=0), name="image_size_positive"),
            models.CheckConstraint(
                condition=Q(leased_by__isnull=True, lease_expires_at__isnull=True)
                | Q(leased_by__isnull=False, lease_expires_at__isnull=False),
                name="image_lease_set_together",
            ),
        ]
        indexes = [
            models.Index(fields=["iteration", "status", "-priority", "id"], name="image_queue_hardest"),
            models.Index(fields=["iteration", "status", "position", "id"], name="image_queue_file"),
            models.Index(fields=["iteration", "status", "random_key", "id"], name="image_queue_random"),
            # The owner's unfiltered image list, a page at a time in file order (keyset pagination).
            models.Index(fields=["iteration", "position", "id"], name="image_by_position"),
            models.Index(fields=["leased_by", "lease_expires_at"], name="image_lease"),
            # The newest review of an iteration in one index lookup: when its metrics are stale.
            models.Index(fields=["iteration", "reviewed_at"], name="image_last_reviewed"),
        ]

    def __str__(self):
        return self.name

    @property
    def in_s3(self):
        return self.source.startswith("s3://")

    def lease_is_free_at(self, now):
        return self.leased_by_id is None or self.lease_expires_at <= now


class ImageCount(models.Model):
    """How many images of an iteration have this status and no_objects flag.

    Written only by database triggers on projects_image (migration 0010), never by Python: a trigger
    runs inside the statement that changes the images, so the counts are exact in every transaction
    on every write path: save(), bulk_create(), QuerySet.update(), raw SQL and COPY, deletes and the
    cascades of iteration and project deletion, and rollbacks. Read them with image_counts().
    A row may hold 0; rows go only with their iteration.
    """

    iteration = models.ForeignKey(
        Iteration, on_delete=models.CASCADE, related_name="image_counts", db_index=False
    )
    status = models.CharField(max_length=16, choices=Image.Status.choices)
    no_objects = models.BooleanField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # Also the index every read and every trigger's upsert goes through.
            models.UniqueConstraint(fields=["iteration", "status", "no_objects"], name="image_count_key"),
        ]

    def __str__(self):
        return f"{self.iteration_id} {self.status} no_objects={self.no_objects}: {self.count}"


def image_counts(iteration_ids):
    """{iteration id: {"total", "pending", "reviewed", "empty"}} for the given iteration ids, from
    the maintained counters in one indexed query, whatever the iterations' sizes. "empty": images
    verified to contain no objects."""
    figures = {pk: {"total": 0, "pending": 0, "reviewed": 0, "empty": 0} for pk in iteration_ids}
    rows = ImageCount.objects.filter(iteration_id__in=list(figures)).values_list(
        "iteration_id", "status", "no_objects", "count")
    for iteration_id, status, no_objects, count in rows:
        counts = figures[iteration_id]
        counts["total"] += count
        counts[status] += count
        counts["empty"] += count if no_objects else 0
    return figures


def counts_of(iteration):
    """image_counts() of one iteration."""
    return image_counts([iteration.pk])[iteration.pk]


class ModelVersion(models.Model):
    class Kind(models.TextChoices):
        REKOGNITION = "rekognition", "Rekognition Custom Labels"
        LOCAL = "local", "Loupe offline detector"
        IMPORTED = "imported", "Imported predictions"

    class Status(models.TextChoices):
        # Local and imported models.
        READY = "READY", "Ready"
        TRAINING = "TRAINING", "Training"
        FAILED = "FAILED", "Failed"
        # Rekognition's ProjectVersion statuses, as DescribeProjectVersions names them.
        TRAINING_IN_PROGRESS = "TRAINING_IN_PROGRESS", "Training in progress"
        TRAINING_COMPLETED = "TRAINING_COMPLETED", "Training completed"
        TRAINING_FAILED = "TRAINING_FAILED", "Training failed"
        STARTING = "STARTING", "Starting"
        RUNNING = "RUNNING", "Running"
        STOPPING = "STOPPING", "Stopping"
        STOPPED = "STOPPED", "Stopped"
        DELETING = "DELETING", "Deleting"
        COPYING_IN_PROGRESS = "COPYING_IN_PROGRESS", "Copying in progress"
        COPYING_COMPLETED = "COPYING_COMPLETED", "Copying completed"
        COPYING_FAILED = "COPYING_FAILED", "Copying failed"
        DEPRECATED = "DEPRECATED", "Deprecated"
        EXPIRED = "EXPIRED", "Expired"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    arn = models.CharField(max_length=2048, blank=True)
    status = models.CharField(max_length=40, choices=Status.choices, blank=True)
    status_message = models.TextField(blank=True)
    # Local detector: the stored exemplar file in Loupe's storage.
    artifact = models.CharField(max_length=1024, blank=True)
    f1 = models.FloatField(null=True, blank=True)
    # {"<label id>": assumed threshold 0..100}: keyed by id, so renaming a label keeps its threshold.
    # Read it through threshold_for() or thresholds_by_label(), write it with thresholds_from().
    thresholds = models.JSONField(default=dict, blank=True)
    trained_from = models.ForeignKey(
        Iteration, null=True, blank=True, on_delete=models.SET_NULL, related_name="trained_models"
    )
    training_images = models.PositiveIntegerField(null=True, blank=True)
    # What training reported beyond F1 and thresholds: {"precision", "recall", "per_label":
    # {label: {"precision", "recall", "f1", "threshold"}}} from Rekognition's evaluation summary.
    evaluation = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="model_version_unique_name"),
        ]

    def __str__(self):
        return f"{self.project.slug}:{self.name}"

    def threshold_for(self, label_id):
        """This model's threshold (0..100) for a label id; DEFAULT_THRESHOLD when it has none."""
        value = (self.thresholds or {}).get(str(label_id)) if label_id is not None else None
        return DEFAULT_THRESHOLD if value is None else float(value)

    def thresholds_by_label(self, label_ids=None):
        """{label id: threshold} for the given label ids, or for every label of the project."""
        if label_ids is None:
            label_ids = self.project.labels.values_list("pk", flat=True)
        return {label_id: self.threshold_for(label_id) for label_id in label_ids}

    @staticmethod
    def thresholds_from(by_label_id):
        """What the thresholds field holds for {label id: threshold 0..100}."""
        return {str(label_id): float(value) for label_id, value in by_label_id.items()}


class Proposal(models.Model):
    # No index of its own: proposal_image_model leads with it.
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="proposals", db_index=False)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="proposals"
    )
    # The same rule as Box.label: RESTRICT. Deleting a label that proposals use is refused
    # (RestrictedError; the admin lists them as protected objects): delete or relabel them first.
    # Deleting the whole project works, because RESTRICT (unlike PROTECT) lets a deletion go ahead
    # when the same cascade also deletes the proposals (here through their image or model version).
    label = models.ForeignKey(LabelClass, on_delete=models.RESTRICT, related_name="proposals")
    # All four are null for an image-level label (no geometry).
    left = models.FloatField(null=True, blank=True)
    top = models.FloatField(null=True, blank=True)
    width = models.FloatField(null=True, blank=True)
    height = models.FloatField(null=True, blank=True)
    confidence = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(100)])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["image", "-confidence", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0, confidence__lte=100), name="proposal_confidence_range"
            ),
            models.CheckConstraint(
                condition=(
                    Q(left__isnull=True, top__isnull=True, width__isnull=True, height__isnull=True)
                    # NULL passes a CHECK, so a half-null box must be refused explicitly.
                    | Q(left__isnull=False, top__isnull=False, width__isnull=False, height__isnull=False,
                        left__gte=0, top__gte=0, width__gt=0, height__gt=0)
                ),
                name="proposal_box_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["image", "model_version"], name="proposal_image_model"),
            # A model's newest proposal in one index lookup: whether its metrics are stale.
            models.Index(fields=["model_version", "id"], name="proposal_model_newest"),
        ]

    def __str__(self):
        return f"{self.label} {self.confidence:.1f} on {self.image_id}"

    @property
    def is_image_level(self):
        return self.left is None


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped early"


# A run in one of these states is still under way: pages poll it, new runs wait for it.
ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class BackgroundRun(models.Model):
    """What every record of long work has: its state, its error, its task and its timing."""

    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Last sign of life from the worker running it: projects.runs.reconcile fails a RUNNING run
    # whose heartbeat is older than LOUPE_RUN_STALE_SECONDS (its worker has died).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class ProposalRun(BackgroundRun):
    """One run of a model over an iteration's images; resumable, so counts are cumulative."""

    iteration = models.ForeignKey(Iteration, on_delete=models.CASCADE, related_name="proposal_runs")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="proposal_runs"
    )
    concurrency = models.PositiveSmallIntegerField(default=4)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    proposals = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.model_version.name} on {self.iteration} ({self.status})"


class ImportRun(BackgroundRun):
    """An image import started from the browser: what it took, what it refused and why."""

    iteration = models.ForeignKey(Iteration, on_delete=models.CASCADE, related_name="import_runs")
    source = models.CharField(max_length=1024)
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    # [[file, reason], ...]: the first REJECTED_KEPT, enough to act on without bloating the row.
    rejected = models.JSONField(default=list, blank=True)
    # A browser upload: [[file name, staged storage name], ...] waiting for the task to import;
    # emptied once the staged files are deleted.
    staged_files = models.JSONField(default=list, blank=True)

    REJECTED_KEPT = 200

    def __str__(self):
        return f"import of {self.source} into {self.iteration_id} ({self.status})"

    def discard_staged_files(self):
        """Delete the upload's staged files: imported or not, nothing reads them again."""
        if not self.staged_files:
            return
        for _, name in self.staged_files:
            default_storage.delete(name)
        self.staged_files = []
        ImportRun.objects.filter(pk=self.pk).update(staged_files=[])


class ProposalOutcome(models.Model):
    """Whether a model version has already proposed on an image: what makes runs resumable."""

    # Neither image nor run has an index of its own: proposal_outcome_unique and
    # proposal_outcome_run lead with them.
    image = models.ForeignKey(
        Image, on_delete=models.CASCADE, related_name="proposal_outcomes", db_index=False
    )
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(
        ProposalRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="outcomes",
        db_index=False,
    )
    ok = models.BooleanField(default=True)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    proposals = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["image", "model_version"], name="proposal_outcome_unique"
            ),
        ]
        indexes = [models.Index(fields=["run", "ok"], name="proposal_outcome_run")]

    def __str__(self):
        return f"{self.model_version_id} on {self.image_id}: {'ok' if self.ok else self.error_code}"


class Export(BackgroundRun):
    """A manifest export: a download or a publish to S3, with its validation report."""

    class Kind(models.TextChoices):
        DOWNLOAD = "download", "Download"
        S3 = "s3", "Published to S3"
        FILE = "file", "Written to a file"

    iteration = models.ForeignKey(Iteration, on_delete=models.CASCADE, related_name="exports")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    options = models.JSONField(default=dict, blank=True)
    lines = models.PositiveIntegerField(default=0)
    uri = models.CharField(max_length=2048, blank=True)
    report = models.JSONField(default=dict, blank=True)

    def __str__(self):
        return f"{self.kind} export of {self.iteration_id} ({self.status})"


class TrainingRun(BackgroundRun):
    """Training a new ModelVersion from an iteration's reviewed boxes (local or Rekognition)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    iteration = models.ForeignKey(
        Iteration, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    kind = models.CharField(max_length=16, choices=ModelVersion.Kind.choices)
    message = models.TextField(blank=True)
    # Rekognition training's state between polls: the request, the phase, the published
    # manifests, dataset ARNs, and the per-image problems Rekognition reported.
    details = models.JSONField(default=dict, blank=True)

    def __str__(self):
        return f"{self.kind} training for {self.project_id} ({self.status})"


class IterationMetrics(models.Model):
    """The dashboard's figures for one model's proposals on one iteration, computed from the review
    work in one pass and kept until the iteration's reviews, images or the model's proposals or
    thresholds change (`signature` says which state they were computed from)."""

    iteration = models.ForeignKey(Iteration, on_delete=models.CASCADE, related_name="metrics")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    signature = models.CharField(max_length=255)
    data = models.JSONField(default=dict)
    computed_at = models.DateTimeField(default=timezone.now)
    # When a background pass was queued for a large iteration; pages show the stored figures meanwhile.
    refresh_queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["iteration", "model_version"], name="iteration_metrics_unique"
            ),
        ]

    def __str__(self):
        return f"metrics of {self.model_version_id} on {self.iteration_id}"


class GroundTruthJob(models.Model):
    """One SageMaker Ground Truth bounding-box adjustment job over an iteration's images.

    A dispatch whose labels exceed the per-job limit creates several jobs of one batch, each with
    its own labels; an image is reviewed once every job of its batch has brought its result back.
    """

    class Status(models.TextChoices):
        # DescribeLabelingJob's LabelingJobStatus values.
        INITIALIZING = "Initializing", "Initializing"
        IN_PROGRESS = "InProgress", "In progress"
        COMPLETED = "Completed", "Completed"
        FAILED = "Failed", "Failed"
        STOPPING = "Stopping", "Stopping"
        STOPPED = "Stopped", "Stopped"

    iteration = models.ForeignKey(Iteration, on_delete=models.CASCADE, related_name="groundtruth_jobs")
    # LabelingJobName: unique in the account and region, so unique here too.
    name = models.CharField(max_length=63, unique=True)
    batch = models.CharField(max_length=63)
    labels = models.JSONField(default=list)
    label_attribute = models.CharField(max_length=127)
    prior_attribute = models.CharField(max_length=127)
    region = models.CharField(max_length=32)
    arn = models.CharField(max_length=2048, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INITIALIZING)
    failure_reason = models.TextField(blank=True)
    # DescribeLabelingJob's LabelCounters (TotalLabeled, HumanLabeled, Unlabeled,
    # FailedNonRetryableError, ...).
    counters = models.JSONField(default=dict, blank=True)
    input_manifest_uri = models.CharField(max_length=2048)
    output_path = models.CharField(max_length=2048)
    output_manifest_uri = models.CharField(max_length=2048, blank=True)
    # The inactive account the job's images are leased to and its reviews are recorded under.
    service_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    checked_at = models.DateTimeField(null=True, blank=True)
    imported_at = models.DateTimeField(null=True, blank=True)
    # The last import: {"lines", "imported", "unchanged", "failed": [[source, reason]],
    # "errors": [[line number, message]]}.
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} ({self.status})"

    @property
    def ended(self):
        return self.status in (self.Status.COMPLETED, self.Status.FAILED, self.Status.STOPPED)


class GroundTruthItem(models.Model):
    """One image sent to a Ground Truth job: the proposals it carried and what came back."""

    class State(models.TextChoices):
        SENT = "sent", "Sent"
        DONE = "done", "Labeled"
        FAILED = "failed", "Failed"
        UNFINISHED = "unfinished", "Not labeled"

    job = models.ForeignKey(GroundTruthJob, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="groundtruth_items")
    # Ids of the proposals written as the image's prior boxes, in manifest order.
    proposals = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.SENT)
    failure_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["job", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "image"], name="groundtruth_item_unique"),
        ]

    def __str__(self):
        return f"{self.image_id} in {self.job_id} ({self.state})"
