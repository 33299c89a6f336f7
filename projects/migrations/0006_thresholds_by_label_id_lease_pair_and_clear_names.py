"""Domain clean-up (issue 9, item 4).

- ModelVersion.thresholds keyed by label id instead of label name (renaming a label keeps its
  threshold); existing rows are converted by name, names the project no longer has are dropped.
- Image.leased_by and Image.lease_expires_at are set together (image_lease_set_together); rows
  that break it are repaired first without touching the foreign key column.
- Iteration.model_version -> Iteration.shown_model, Image.uncertainty -> Image.priority (renames
  keep the data); image_queue_hardest keeps its name and, in the database, the index itself (a
  renamed column stays in its indexes on PostgreSQL and SQLite).
- Iteration.status (never used) is dropped.
- Foreign keys that a composite index leads with lose their own index (DROP INDEX only).
- Proposal.label and Box.label are RESTRICT: a label in use cannot be deleted, a project can.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def thresholds_by_label_id(apps, schema_editor):
    ModelVersion = apps.get_model("projects", "ModelVersion")
    LabelClass = apps.get_model("projects", "LabelClass")
    for model in ModelVersion.objects.all().iterator():
        if not model.thresholds:
            continue
        ids = dict(LabelClass.objects.filter(project_id=model.project_id).values_list("name", "pk"))
        model.thresholds = {
            str(ids[name]): float(value) for name, value in model.thresholds.items() if name in ids
        }
        model.save(update_fields=["thresholds"])


def thresholds_by_label_name(apps, schema_editor):
    ModelVersion = apps.get_model("projects", "ModelVersion")
    LabelClass = apps.get_model("projects", "LabelClass")
    for model in ModelVersion.objects.all().iterator():
        if not model.thresholds:
            continue
        names = dict(LabelClass.objects.filter(project_id=model.project_id).values_list("pk", "name"))
        model.thresholds = {
            names[int(key)]: value for key, value in model.thresholds.items()
            if key.isdigit() and int(key) in names
        }
        model.save(update_fields=["thresholds"])


def pair_leases(apps, schema_editor):
    """Before the constraint: an expiry without a holder goes; a holder without an expiry (which
    lease_is_free counted as free) gets an expiry of now, i.e. an expired lease. Only
    lease_expires_at is written, so PostgreSQL queues no foreign key checks before the ALTERs."""
    Image = apps.get_model("projects", "Image")
    Image.objects.filter(leased_by__isnull=True, lease_expires_at__isnull=False).update(lease_expires_at=None)
    Image.objects.filter(leased_by__isnull=False, lease_expires_at__isnull=True).update(
        lease_expires_at=timezone.now()
    )


def drop_index(table, column, name):
    return migrations.RunSQL(
        f'DROP INDEX IF EXISTS "{name}"', f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")'
    )


class Migration(migrations.Migration):

    dependencies = [
        ("projects", "0005_run_heartbeat_and_staged_uploads"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(pair_leases, migrations.RunPython.noop),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RenameField(model_name="image", old_name="uncertainty", new_name="priority"),
            ],
            state_operations=[
                migrations.RemoveIndex(model_name="image", name="image_queue_hardest"),
                migrations.RenameField(model_name="image", old_name="uncertainty", new_name="priority"),
                migrations.AddIndex(
                    model_name="image",
                    index=models.Index(
                        fields=["iteration", "status", "-priority", "id"], name="image_queue_hardest"
                    ),
                ),
            ],
        ),
        migrations.RenameField(model_name="iteration", old_name="model_version", new_name="shown_model"),
        migrations.RemoveField(model_name="iteration", name="status"),
        # db_index=False on foreign keys that a composite index leads with. AlterField would drop and
        # re-add each foreign key constraint around the DROP INDEX, re-checking every row of the big
        # tables; the state changes alone and the database only loses the index (same name on
        # PostgreSQL and SQLite, as Django derives it from table and column).
        migrations.SeparateDatabaseAndState(
            database_operations=[
                drop_index("projects_image", "iteration_id", "projects_image_iteration_id_69f4ebe8"),
                drop_index("projects_image", "leased_by_id", "projects_image_leased_by_id_a544bea1"),
                drop_index("projects_proposal", "image_id", "projects_proposal_image_id_e0041e37"),
                drop_index("projects_proposaloutcome", "image_id", "projects_proposaloutcome_image_id_25f56eee"),
                drop_index("projects_proposaloutcome", "run_id", "projects_proposaloutcome_run_id_940d6d9e"),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="image",
                    name="iteration",
                    field=models.ForeignKey(
                        db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="images",
                        to="projects.iteration",
                    ),
                ),
                migrations.AlterField(
                    model_name="image",
                    name="leased_by",
                    field=models.ForeignKey(
                        blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+", to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="proposal",
                    name="image",
                    field=models.ForeignKey(
                        db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="proposals",
                        to="projects.image",
                    ),
                ),
                migrations.AlterField(
                    model_name="proposaloutcome",
                    name="image",
                    field=models.ForeignKey(
                        db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="proposal_outcomes",
                        to="projects.image",
                    ),
                ),
                migrations.AlterField(
                    model_name="proposaloutcome",
                    name="run",
                    field=models.ForeignKey(
                        blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                        related_name="outcomes", to="projects.proposalrun",
                    ),
                ),
            ],
        ),
        migrations.AlterField(
            model_name="proposal",
            name="label",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.RESTRICT, related_name="proposals", to="projects.labelclass"
            ),
        ),
        migrations.AddConstraint(
            model_name="image",
            constraint=models.CheckConstraint(
                condition=models.Q(leased_by__isnull=True, lease_expires_at__isnull=True)
                | models.Q(leased_by__isnull=False, lease_expires_at__isnull=False),
                name="image_lease_set_together",
            ),
        ),
        migrations.RunPython(thresholds_by_label_id, thresholds_by_label_name),
    ]
