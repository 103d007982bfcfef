from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Major incidents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cases import extensions

        extensions.register_case_panel("incidents/_case_panel.html", slot="side", order=25)

        from . import queue, services, tasks

        queue.register()  # the badge, the filter and the bulk actions of the queue
        # Large fan-outs ask workers to help (the task looked up at each call, so it can be replaced).
        services.set_helper_dispatch(lambda update_id: tasks.deliver_update.delay(update_id))
