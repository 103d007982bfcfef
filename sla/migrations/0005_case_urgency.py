"""Fill the queue's urgency columns (cases 0008) of the open cases from their clocks."""

from django.db import migrations

from cases.models import OPEN_Q
from sla import urgency


def fill(apps, schema_editor):
    case_model = apps.get_model("cases", "Case")
    clock_model = apps.get_model("sla", "SlaClock")
    last = 0
    while True:
        ids = list(
            case_model.objects.filter(OPEN_Q, pk__gt=last).order_by("pk").values_list("pk", flat=True)[:5000]
        )
        if not ids:
            return
        urgency.refresh(ids, open_only=True, case_model=case_model, clock_model=clock_model)
        last = ids[-1]


class Migration(migrations.Migration):
    dependencies = [
        ("sla", "0004_drop_redundant_case_fk_index"),
        ("cases", "0008_case_next_due"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop, elidable=True)]
