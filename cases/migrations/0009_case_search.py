"""Case search: one search document per case (cases/search.py), filled for the existing cases.

On PostgreSQL the pg_trgm extension is installed (trusted since PostgreSQL 13: the database owner may
install it), the documents are written in batches of case ids, one transaction each (the migration is
not atomic, so a large history does not sit in one transaction), and the GIN indexes (full text,
trigrams) are built afterwards, CONCURRENTLY, so new documents can be written meanwhile. Cases written
by the previous release while this runs are caught by ``manage.py rebuild_case_search`` (idempotent).
SQLite gets the table and its texts; it has no vectors or GIN indexes.
"""

import django.contrib.postgres.search
import django.db.models.deletion
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

BACKFILL_BATCH = 20_000

# Kept here as they were when this migration was written (cases/search.py may rename later ones).
INDEXES = {
    "case_search_public_gin": "USING gin (public_vector)",
    "case_search_staff_gin": "USING gin (staff_vector)",
    "case_search_names_trgm": "USING gin (names_text gin_trgm_ops)",
}


class TrigramExtensionOnPostgreSQL(TrigramExtension):
    """pg_trgm on PostgreSQL (nothing elsewhere); kept when migrating backwards, since other
    indexes may use it by then."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        return None


def backfill(apps, schema_editor):
    from cases import search

    search.rebuild(batch=BACKFILL_BATCH, apps=apps)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, definition in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON cases_casesearchdocument {definition}"
        )
    schema_editor.execute("ANALYZE cases_casesearchdocument")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("cases", "0008_case_next_due"),
    ]

    operations = [
        TrigramExtensionOnPostgreSQL(),
        migrations.CreateModel(
            name="CaseSearchDocument",
            fields=[
                (
                    "case",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="search_document",
                        serialize=False,
                        to="cases.case",
                    ),
                ),
                ("names_text", models.TextField(blank=True)),
                ("public_text", models.TextField(blank=True)),
                ("staff_text", models.TextField(blank=True)),
                (
                    "public_vector",
                    django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
                ),
                (
                    "staff_vector",
                    django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
                ),
                ("indexed_at", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
