from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "supportdesk.core"
    label = "core"
    verbose_name = "SupportDesk platform"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the deployment checks
        from .tokens import connect_signals

        connect_signals()  # a password change or deactivation revokes the API tokens
