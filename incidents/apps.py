from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Major incidents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cases import extensions

        extensions.register_case_panel("incidents/_case_panel.html", slot="side", order=25)

        from . import queue

        queue.register()  # the badge, the filter and the bulk actions of the queue
