"""Duration values keep the case's team and tier (team and tier filters read the histograms), and
the rollup keeps the repeats of reopen and resolution events (``RollupRepeat``).

The rolled-up durations lack the new columns and no day has its repeats yet, so the rollup is
emptied and starts again from the first day: until the refresh task has rolled the days up again,
the figures are read from the source (the same figures, only slower).
"""

from django.db import migrations, models


def forget_the_rollup(apps, schema_editor):
    for name in ("DailyRollup", "DurationBucket", "DurationValue", "RollupDirtyDay"):
        apps.get_model("metrics", name).objects.all().delete()
    apps.get_model("metrics", "RollupState").objects.update(through=None)


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0003_duration_histograms"),
    ]

    operations = [
        migrations.RunPython(forget_the_rollup, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="durationvalue", name="metrics_dvalue_idx"),
        migrations.AddField(
            model_name="durationvalue",
            name="team_id",
            field=models.IntegerField(null=True),
        ),
        migrations.AddField(
            model_name="durationvalue",
            name="tier",
            field=models.CharField(default="", max_length=20),
            preserve_default=False,
        ),
        migrations.AddIndex(
            model_name="durationvalue",
            index=models.Index(
                fields=["figure", "bucket", "value", "day", "severity"],
                include=["team_id", "tier"],
                name="metrics_dvalue_rank_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="durationvalue",
            index=models.Index(
                fields=["figure", "team_id", "day"],
                include=["severity", "bucket", "value"],
                name="metrics_dvalue_team_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="durationvalue",
            index=models.Index(
                fields=["figure", "tier", "day"],
                include=["severity", "bucket", "value"],
                name="metrics_dvalue_tier_idx",
            ),
        ),
        migrations.CreateModel(
            name="RollupRepeat",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("previous_day", models.DateField()),
                ("severity", models.CharField(max_length=2)),
                ("team_id", models.IntegerField(null=True)),
                ("tier", models.CharField(max_length=20)),
                ("reopens", models.PositiveIntegerField(default=0)),
                ("resolutions", models.PositiveIntegerField(default=0)),
                ("linked_resolutions", models.PositiveIntegerField(default=0)),
            ],
            options={
                "indexes": [models.Index(fields=["day"], name="metrics_repeat_day_idx")],
            },
        ),
    ]
