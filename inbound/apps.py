from django.apps import AppConfig


class InboundConfig(AppConfig):
    name = "inbound"
    verbose_name = "Inbound mail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from supportdesk.core import outbox
        from supportdesk.core.prometheus import register_scrape_figures

        from . import health, threads

        register_scrape_figures("inbound", health.inbound_figures)

        outbox.register_thread_source(threads.customer_last_mail)
        outbox.register_sender_source(threads.case_sender)

        # Provider webhooks (django-anymail): every inbound mail a provider posts is received here.
        from anymail.signals import inbound

        from . import webhooks

        inbound.connect(webhooks.on_inbound, dispatch_uid="supportdesk.inbound.provider")
