# The agents' macros: reusable replies with placeholders and optional actions (cases.macros).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import cases.models


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0009_case_search"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Macro",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                (
                    "body",
                    models.TextField(
                        blank=True,
                        help_text="The public reply; may use placeholders.",
                        max_length=50000,
                        validators=[cases.models.validate_macro_body],
                    ),
                ),
                (
                    "set_status",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("triaged", "Triaged"),
                            ("in_progress", "In progress"),
                            ("waiting_on_customer", "Waiting on customer"),
                            ("waiting_on_engineering", "Waiting on engineering"),
                            ("resolved", "Resolved"),
                        ],
                        default="",
                        max_length=32,
                    ),
                ),
                (
                    "add_tags",
                    models.JSONField(blank=True, default=list, help_text="Tag names added to the case."),
                ),
                ("created_at", models.DateTimeField()),
                ("updated_at", models.DateTimeField()),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "owner",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="macros",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "set_team",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="cases.team",
                    ),
                ),
            ],
            options={
                "ordering": ["name", "id"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("owner__isnull", False)),
                        fields=("owner", "name"),
                        name="macro_name_unique_per_owner",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("owner__isnull", True)),
                        fields=("name",),
                        name="macro_shared_name_unique",
                    ),
                ],
            },
        ),
    ]
