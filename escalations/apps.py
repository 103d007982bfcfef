from django.apps import AppConfig


class EscalationsConfig(AppConfig):
    name = "escalations"
    verbose_name = "Escalations"

    def ready(self) -> None:
        from cases import extensions
        from supportdesk.core.prometheus import register_scrape_figures

        from . import events, health

        register_scrape_figures("webhooks", health.webhook_figures)

        extensions.register_case_panel("escalations/_case_panel.html", slot="side", order=20)
        extensions.register_case_panel("escalations/_time_split.html", slot="side", order=25)
        extensions.register_event_labels(events.LABELS)

        from supportdesk.core.signals import outbound_events

        from . import outbound

        # Other apps' events (the SLA sweep's warnings and breaches) become signed deliveries here.
        outbound_events.connect(outbound.on_outbound_events, dispatch_uid="escalations.outbound")
