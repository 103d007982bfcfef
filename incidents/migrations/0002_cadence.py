"""The incident's own update cadence (target, next update due, reminders) and the state of each
update's delivery to a case (pending until it is posted in the case's own transaction).

Existing incidents began when they were declared (or when the case they were declared from was
opened) and keep a 30-minute cadence from their last public update; existing deliveries were
posted or refused in one transaction, so none is pending.
"""

import datetime as dt

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def backfill(apps, schema_editor):
    MajorIncident = apps.get_model("incidents", "MajorIncident")
    IncidentUpdate = apps.get_model("incidents", "IncidentUpdate")
    UpdateDelivery = apps.get_model("incidents", "UpdateDelivery")
    for incident in MajorIncident.objects.select_related("origin_case"):
        began = incident.declared_at
        if incident.origin_case is not None and incident.origin_case.created_at < began:
            began = incident.origin_case.created_at
        incident.started_at = began
        if incident.status == "active":
            last = (
                IncidentUpdate.objects.filter(incident=incident, is_public=True)
                .order_by("-created_at")
                .values_list("created_at", flat=True)
                .first()
            )
            due = (last or incident.declared_at) + dt.timedelta(minutes=incident.cadence_minutes)
            incident.next_update_due_at = due
            incident.reminder_due_at = due
        incident.save(update_fields=["started_at", "next_update_due_at", "reminder_due_at"])
    created = IncidentUpdate.objects.filter(pk=models.OuterRef("update_id")).values("created_at")[:1]
    UpdateDelivery.objects.filter(event_id__isnull=False).update(
        state="delivered", delivered_at=models.Subquery(created)
    )
    UpdateDelivery.objects.filter(event_id__isnull=True).update(state="refused")


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0013_history"),
        ("incidents", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="IncidentReminder",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("period_start", models.DateTimeField()),
                ("update_due_at", models.DateTimeField()),
                ("sent_at", models.DateTimeField()),
            ],
            options={
                "ordering": ["-period_start", "-id"],
            },
        ),
        migrations.AddField(
            model_name="incidentupdate",
            name="due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="majorincident",
            name="cadence_minutes",
            field=models.PositiveIntegerField(default=30),
        ),
        migrations.AddField(
            model_name="majorincident",
            name="next_update_due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="majorincident",
            name="reminder_due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="majorincident",
            name="started_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="updatedelivery",
            name="delivered_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="updatedelivery",
            name="state",
            field=models.CharField(
                choices=[("pending", "Pending"), ("delivered", "Posted"), ("refused", "Not posted")],
                default="pending",
                max_length=10,
            ),
        ),
        migrations.AddIndex(
            model_name="majorincident",
            index=models.Index(
                condition=models.Q(("reminder_due_at__isnull", False), ("status", "active")),
                fields=["reminder_due_at"],
                name="incident_reminder_due_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="updatedelivery",
            index=models.Index(
                condition=models.Q(("state", "pending")),
                fields=["update", "case"],
                name="delivery_pending_idx",
            ),
        ),
        migrations.AddField(
            model_name="incidentreminder",
            name="incident",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="reminders",
                to="incidents.majorincident",
            ),
        ),
        migrations.AddField(
            model_name="incidentreminder",
            name="recipient",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddConstraint(
            model_name="incidentreminder",
            constraint=models.UniqueConstraint(
                fields=("incident", "period_start"), name="incident_reminded_once"
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="majorincident",
            name="started_at",
            field=models.DateTimeField(),
        ),
    ]
