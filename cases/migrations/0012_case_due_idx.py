from django.db import migrations, models

from supportdesk.core import migration_ops


class Migration(migrations.Migration):
    # Built concurrently on PostgreSQL (no write lock on the cases table).
    atomic = False

    dependencies = [("cases", "0011_saved_views")]

    operations = [
        migration_ops.AddIndexConcurrently(
            model_name="case",
            index=models.Index(
                condition=models.Q(("next_due_at__isnull", False)),
                fields=["next_due_at", "id"],
                name="case_due_idx",
            ),
        ),
    ]
