"""Maintained image counts per iteration, status and no_objects flag (projects.ImageCount), the
newest review's "changed" on the image, and the index the owner's image list pages through.

Why triggers: the counts must be exact in the same transaction as every change to projects_image,
and rows change on paths Python never sees one row at a time: bulk_create, QuerySet.update(),
COPY and raw SQL in importers, the deletes Django issues for iteration and project cascades, and
rollbacks. A trigger runs inside each of those statements, so no path can forget the counters.

PostgreSQL: statement-level triggers with transition tables, so a 250,000-row insert costs one
grouped upsert, not 250,000. Every upsert takes its counter rows in (iteration, status,
no_objects) order, so two transactions changing the same counters (concurrent review submits:
pending -1, reviewed +1) queue behind each other instead of deadlocking. SQLite has neither
statement-level triggers nor transition tables, but runs one writer at a time: row-level triggers.

Deletes only decrement rows that exist: a cascade may delete an iteration's counters before its
images, and re-creating them would point at the iteration being deleted.

On SQLite, a later migration that makes Django rebuild projects_image (copy into a new table,
drop the old one) drops these triggers with the old table: such a migration must create them
again. tests/projects/test_image_counts.py fails if they are missing.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

KEY = "iteration_id, status, no_objects"
UPSERT = (f"ON CONFLICT ({KEY}) DO UPDATE SET count = projects_imagecount.count + EXCLUDED.count")

POSTGRESQL_CREATE = [
    f"""
    CREATE FUNCTION projects_image_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO projects_imagecount ({KEY}, count)
        SELECT {KEY}, count(*) FROM inserted_images GROUP BY {KEY} ORDER BY {KEY}
        {UPSERT};
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER projects_image_counts_insert AFTER INSERT ON projects_image
    REFERENCING NEW TABLE AS inserted_images
    FOR EACH STATEMENT EXECUTE FUNCTION projects_image_counts_insert()
    """,
    # Every UPDATE of projects_image fires this (PostgreSQL allows no column list with transition
    # tables); one that changes no counted column (a lease, a priority) nets to no row and locks none.
    f"""
    CREATE FUNCTION projects_image_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO projects_imagecount ({KEY}, count)
        SELECT {KEY}, sum(delta) FROM (
            SELECT {KEY}, 1 AS delta FROM images_after
            UNION ALL
            SELECT {KEY}, -1 AS delta FROM images_before
        ) AS changes
        GROUP BY {KEY} HAVING sum(delta) <> 0 ORDER BY {KEY}
        {UPSERT};
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER projects_image_counts_update AFTER UPDATE ON projects_image
    REFERENCING OLD TABLE AS images_before NEW TABLE AS images_after
    FOR EACH STATEMENT EXECUTE FUNCTION projects_image_counts_update()
    """,
    # The rows are locked in key order first: an UPDATE ... FROM locks in whatever order its join runs.
    f"""
    CREATE FUNCTION projects_image_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM projects_imagecount AS c
        WHERE (c.iteration_id, c.status, c.no_objects) IN (SELECT {KEY} FROM deleted_images)
        ORDER BY c.iteration_id, c.status, c.no_objects FOR UPDATE;
        UPDATE projects_imagecount AS c SET count = c.count - removed.count
        FROM (SELECT {KEY}, count(*) AS count FROM deleted_images GROUP BY {KEY}) AS removed
        WHERE c.iteration_id = removed.iteration_id AND c.status = removed.status
            AND c.no_objects = removed.no_objects;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER projects_image_counts_delete AFTER DELETE ON projects_image
    REFERENCING OLD TABLE AS deleted_images
    FOR EACH STATEMENT EXECUTE FUNCTION projects_image_counts_delete()
    """,
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS projects_image_counts_insert ON projects_image",
    "DROP TRIGGER IF EXISTS projects_image_counts_update ON projects_image",
    "DROP TRIGGER IF EXISTS projects_image_counts_delete ON projects_image",
    "DROP FUNCTION IF EXISTS projects_image_counts_insert()",
    "DROP FUNCTION IF EXISTS projects_image_counts_update()",
    "DROP FUNCTION IF EXISTS projects_image_counts_delete()",
]

SQLITE_ADD = f"""
    INSERT INTO projects_imagecount ({KEY}, count) VALUES (NEW.iteration_id, NEW.status, NEW.no_objects, 1)
    ON CONFLICT ({KEY}) DO UPDATE SET count = count + 1;
"""
SQLITE_REMOVE = """
    UPDATE projects_imagecount SET count = count - 1
    WHERE iteration_id = OLD.iteration_id AND status = OLD.status AND no_objects = OLD.no_objects;
"""
SQLITE_CREATE = [
    f"""
    CREATE TRIGGER projects_image_counts_insert AFTER INSERT ON projects_image FOR EACH ROW
    BEGIN {SQLITE_ADD} END
    """,
    f"""
    CREATE TRIGGER projects_image_counts_update
    AFTER UPDATE OF iteration_id, status, no_objects ON projects_image FOR EACH ROW
    WHEN OLD.iteration_id IS NOT NEW.iteration_id OR OLD.status IS NOT NEW.status
        OR OLD.no_objects IS NOT NEW.no_objects
    BEGIN {SQLITE_REMOVE} {SQLITE_ADD} END
    """,
    f"""
    CREATE TRIGGER projects_image_counts_delete AFTER DELETE ON projects_image FOR EACH ROW
    BEGIN {SQLITE_REMOVE} END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS projects_image_counts_insert",
    "DROP TRIGGER IF EXISTS projects_image_counts_update",
    "DROP TRIGGER IF EXISTS projects_image_counts_delete",
]

# The images' counts as they stand, taken after the triggers exist and in the same transaction:
# on PostgreSQL, CREATE TRIGGER locks out concurrent writes to projects_image until the commit.
FILL_COUNTS = (f"INSERT INTO projects_imagecount ({KEY}, count) "
               f"SELECT {KEY}, count(*) FROM projects_image GROUP BY {KEY}")
FILL_CHANGED = """
    UPDATE projects_image SET changed = TRUE
    WHERE (SELECT review.changed FROM reviewer_review AS review WHERE review.image_id = projects_image.id
           ORDER BY review.submitted_at DESC, review.id DESC LIMIT 1)
"""


def _statements(schema_editor, postgresql, sqlite):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        return postgresql
    if vendor == "sqlite":
        return sqlite
    raise NotImplementedError(f"Loupe's image counters have triggers for PostgreSQL and SQLite, not {vendor}.")


def create_triggers_and_fill(apps, schema_editor):
    for statement in [FILL_CHANGED, *_statements(schema_editor, POSTGRESQL_CREATE, SQLITE_CREATE), FILL_COUNTS]:
        schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    for statement in _statements(schema_editor, POSTGRESQL_DROP, SQLITE_DROP):
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('projects', '0009_groundtruth_jobs'),
        ('reviewer', '0002_restrict_box_label_and_review_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ImageCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('pending', 'Awaiting review'), ('reviewed', 'Reviewed')], max_length=16)),
                ('no_objects', models.BooleanField()),
                ('count', models.BigIntegerField(default=0)),
                ('iteration', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='image_counts', to='projects.iteration')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('iteration', 'status', 'no_objects'), name='image_count_key')],
            },
        ),
        migrations.AddField(
            model_name='image',
            name='changed',
            field=models.BooleanField(db_default=False, default=False, help_text='The newest review changed the proposals.'),
        ),
        migrations.AddIndex(
            model_name='image',
            index=models.Index(fields=['iteration', 'position', 'id'], name='image_by_position'),
        ),
        migrations.RunPython(create_triggers_and_fill, drop_triggers, elidable=False),
    ]
