from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "supportdesk.core"
    label = "core"
    verbose_name = "SupportDesk platform"

    def ready(self) -> None:
        from . import checks, outbox, tasks  # noqa: F401 - importing checks registers them
        from .tokens import connect_signals

        connect_signals()  # a password change or deactivation revokes the API tokens
        # Committed mail goes to the workers (the task looked up at each call, so it can be replaced).
        outbox.set_dispatcher(lambda outbound_id: tasks.send_outbound.delay(outbound_id))
