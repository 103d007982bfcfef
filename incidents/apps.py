from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Major incidents"
    default_auto_field = "django.db.models.BigAutoField"
