"""The default business calendar and the SLA policies of DOMAIN.md (see sla/defaults.py)."""

from django.db import migrations


def seed(apps, schema_editor):
    from sla import defaults

    defaults.seed(
        calendar_model=apps.get_model("sla", "BusinessCalendar"),
        opening_hours_model=apps.get_model("sla", "OpeningHours"),
        policy_model=apps.get_model("sla", "SlaPolicy"),
    )


class Migration(migrations.Migration):
    dependencies = [("sla", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
