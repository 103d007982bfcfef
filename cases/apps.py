from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = "Cases"

    def ready(self) -> None:
        from supportdesk.core import outbox

        from . import delivery, search

        outbox.delivery_failed.connect(delivery.on_delivery_failed, dispatch_uid="cases.delivery_failed")
        search.connect_signals()
