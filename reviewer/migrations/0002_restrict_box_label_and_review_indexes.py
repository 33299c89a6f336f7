"""Review.image and Review.reviewer lose their own indexes (review_by_image and
review_by_reviewer lead with them); Box.label becomes RESTRICT: a label in use cannot be deleted,
a project (whose cascade deletes the boxes too) can."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def drop_index(table, column, name):
    return migrations.RunSQL(
        f'DROP INDEX IF EXISTS "{name}"', f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")'
    )


class Migration(migrations.Migration):

    dependencies = [
        ("reviewer", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="box",
            name="label",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.RESTRICT, related_name="boxes", to="projects.labelclass"
            ),
        ),
        # State only for the database's foreign key constraints: AlterField would drop and re-add
        # them around the DROP INDEX, re-checking every review (see projects 0006).
        migrations.SeparateDatabaseAndState(
            database_operations=[
                drop_index("reviewer_review", "image_id", "reviewer_review_image_id_b5990246"),
                drop_index("reviewer_review", "reviewer_id", "reviewer_review_reviewer_id_dc1d4e1f"),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="review",
                    name="image",
                    field=models.ForeignKey(
                        db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="reviews",
                        to="projects.image",
                    ),
                ),
                migrations.AlterField(
                    model_name="review",
                    name="reviewer",
                    field=models.ForeignKey(
                        db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="reviews",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
    ]
