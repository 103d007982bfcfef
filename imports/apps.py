from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "imports"
    verbose_name = "Import history"

    def ready(self) -> None:
        from cases import extensions

        from .history import IMPORTED_UPDATE

        extensions.register_event_labels({IMPORTED_UPDATE: "Update (imported)"})
