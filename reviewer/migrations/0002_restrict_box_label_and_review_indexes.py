"""Review.image and Review.reviewer lose their own indexes (review_by_image and
review_by_reviewer lead with them); Box.label becomes RESTRICT: a label in use cannot be deleted,
a project (whose cascade deletes the boxes too) can."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


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
    ]
