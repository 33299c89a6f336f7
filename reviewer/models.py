"""The reviewed truth (Boxes, with where each came from) and the audit trail of reviews."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Box(models.Model):
    class Origin(models.TextChoices):
        ACCEPTED = "accepted", "Accepted proposal"
        ADJUSTED = "adjusted", "Adjusted proposal"
        ADDED = "added", "Added by reviewer"
        IMPORTED = "imported", "Imported"

    image = models.ForeignKey("projects.Image", on_delete=models.CASCADE, related_name="boxes")
    # Reviewed truth keeps its label: deleting a label that boxes use is refused (RestrictedError;
    # the admin lists the boxes as protected objects). Proposal.label has the same rule. RESTRICT,
    # not PROTECT: deleting the whole project deletes the boxes through their images in the same
    # cascade, which RESTRICT allows and PROTECT would refuse.
    label = models.ForeignKey("projects.LabelClass", on_delete=models.RESTRICT, related_name="boxes")
    left = models.FloatField()
    top = models.FloatField()
    width = models.FloatField()
    height = models.FloatField()
    origin = models.CharField(max_length=16, choices=Origin.choices)
    proposal = models.ForeignKey(
        "projects.Proposal", null=True, blank=True, on_delete=models.SET_NULL, related_name="boxes"
    )
    # Overlap with the proposal it came from: 1.0 for an untouched accept.
    iou = models.FloatField(null=True, blank=True)
    # The proposal's label differs from the final one.
    relabeled = models.BooleanField(default=False)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "boxes"
        ordering = ["image", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(left__gte=0, top__gte=0, width__gt=0, height__gt=0),
                name="box_geometry_valid",
            ),
        ]

    def __str__(self):
        return f"{self.label} [{self.left:.0f},{self.top:.0f} {self.width:.0f}x{self.height:.0f}]"


class Review(models.Model):
    """One submitted review of an image: who, when, how long, and every per-box decision."""

    # Neither has an index of its own: review_by_image and review_by_reviewer lead with them.
    image = models.ForeignKey(
        "projects.Image", on_delete=models.CASCADE, related_name="reviews", db_index=False
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews", db_index=False
    )
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(default=timezone.now)
    elapsed_ms = models.PositiveIntegerField(default=0)
    no_objects = models.BooleanField(default=False)
    # True when the reviewer changed anything the model proposed (rejected, adjusted, added).
    changed = models.BooleanField(default=False)
    # [{"proposal": id|null, "verdict": "accepted|rejected|adjusted|added", "label": id, ...}]
    decisions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [
            models.Index(fields=["reviewer", "submitted_at"], name="review_by_reviewer"),
            models.Index(fields=["image", "submitted_at"], name="review_by_image"),
        ]

    def __str__(self):
        return f"review of {self.image_id} by {self.reviewer_id}"
