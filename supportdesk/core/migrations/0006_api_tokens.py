"""API tokens hashed at rest (knox, on core.ApiToken), and the old plaintext tokens converted.

Every DRF authtoken key becomes a hashed token with the same key, so the scripts that use it keep
working until it expires (API_TOKEN_DAYS from now); the plaintext rows are then deleted. Going
back drops the hashed tokens: a key cannot be recovered from its hash.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def convert_plaintext_tokens(apps, schema_editor):
    from knox.settings import knox_settings

    from supportdesk.core.tokens import convert_plaintext_tokens

    convert_plaintext_tokens(
        plain_model=apps.get_model("authtoken", "Token"),
        hashed_model=apps.get_model("core", "ApiToken"),
        now=timezone.now(),
        ttl=knox_settings.TOKEN_TTL,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0005_user_preferences"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                ("token_key", models.CharField(db_index=True, max_length=25)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("expiry", models.DateTimeField(blank=True, null=True)),
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("digest", models.CharField(max_length=128, unique=True)),
                ("name", models.CharField(max_length=100)),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="auth_token_set",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "API token",
                "ordering": ["-created", "-id"],
            },
        ),
        migrations.RunPython(convert_plaintext_tokens, migrations.RunPython.noop),
    ]
