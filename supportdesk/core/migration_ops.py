"""Index operations for the large tables: built and dropped without blocking writes.

A plain ``CREATE INDEX`` holds a lock that blocks every insert and update of the table until the
index is built (minutes on the cases, events and clocks of a large install). On PostgreSQL these
operations run ``CREATE INDEX CONCURRENTLY`` / ``DROP INDEX CONCURRENTLY`` instead, which PostgreSQL
refuses inside a transaction: a migration using them sets ``atomic = False``. Elsewhere (SQLite in
development and the default test run) they are the plain ``AddIndex`` / ``RemoveIndex``. The state
changes are those of ``AddIndex`` / ``RemoveIndex``, so ``makemigrations`` sees no difference.

If a concurrent build fails (a deadlock, a duplicate in a unique index) PostgreSQL leaves an
INVALID index behind: drop it (``DROP INDEX CONCURRENTLY name``) and run ``migrate`` again.
"""

from __future__ import annotations

from django.contrib.postgres import operations as postgres
from django.db.migrations import AddIndex, AlterField, RemoveIndex
from django.db.models import Index


class AddIndexConcurrently(postgres.AddIndexConcurrently):
    """``CREATE INDEX CONCURRENTLY`` on PostgreSQL, a plain ``AddIndex`` on other databases."""

    def describe(self):
        return f"Create index {self.index.name} on {self.model_name} (concurrently on PostgreSQL)"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class RemoveIndexConcurrently(postgres.RemoveIndexConcurrently):
    """``DROP INDEX CONCURRENTLY`` on PostgreSQL, a plain ``RemoveIndex`` on other databases."""

    def describe(self):
        return f"Remove index {self.name} from {self.model_name} (concurrently on PostgreSQL)"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            RemoveIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            RemoveIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class DropFieldIndexConcurrently(postgres.NotInTransactionMixin, AlterField):
    """An ``AlterField`` that only turns a field's own index off (``db_index=True`` to ``False``).

    On PostgreSQL the field's index is dropped CONCURRENTLY and nothing else is touched (a plain
    ``AlterField`` of a foreign key also drops and re-adds its constraint, which re-checks every row
    while writes wait). Backwards it builds the index CONCURRENTLY again. Elsewhere it is the plain
    ``AlterField``.
    """

    def describe(self):
        return f"Drop the index of {self.model_name}.{self.name} (concurrently on PostgreSQL)"

    def _fields(self, app_label, from_state, to_state):
        old = from_state.apps.get_model(app_label, self.model_name)
        new = to_state.apps.get_model(app_label, self.model_name)
        old_field, new_field = old._meta.get_field(self.name), new._meta.get_field(self.name)
        old_rest, new_rest = old_field.deconstruct()[1:], new_field.deconstruct()[1:]
        old_rest[2].pop("db_index", None)
        new_rest[2].pop("db_index", None)
        if old_rest != new_rest:
            raise ValueError(f"{self.model_name}.{self.name}: only db_index may change here.")
        return old, old_field, new_field

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        self._ensure_not_in_transaction(schema_editor)
        model, old_field, new_field = self._fields(app_label, from_state, to_state)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return None
        if old_field.db_index and not new_field.db_index:
            # The names Django gave the field's index: btree, on this column alone, not a Meta index.
            names = schema_editor._constraint_names(
                model,
                [old_field.column],
                index=True,
                type_=Index.suffix,
                exclude={index.name for index in model._meta.indexes},
            )
            for name in names:
                schema_editor.execute(schema_editor._delete_index_sql(model, name, concurrently=True))
        return None

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        self._ensure_not_in_transaction(schema_editor)
        model, field, _ = self._fields(app_label, to_state, from_state)  # to_state: with the index
        if self.allow_migrate_model(schema_editor.connection.alias, model) and field.db_index:
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[field], concurrently=True))
        return None
