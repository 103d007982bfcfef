from django.apps import AppConfig


class EscalationsConfig(AppConfig):
    name = "escalations"
    verbose_name = "Escalations"

    def ready(self) -> None:
        from cases import extensions
        from supportdesk.core.prometheus import register_scrape_figures

        from . import health

        register_scrape_figures("webhooks", health.webhook_figures)

        extensions.register_case_panel("escalations/_case_panel.html", slot="side", order=20)
        extensions.register_event_labels(
            {
                "escalation_drafted": "Escalation drafted",
                "escalation_submitted": "Escalated to engineering",
                "escalation_quality_override": "Escalation quality override",
                "escalation_info_requested": "Engineering asked for information",
                "escalation_info_provided": "Information sent to engineering",
                "escalation_acknowledged": "Engineering acknowledged the escalation",
                "escalation_started": "Engineering started work",
                "escalation_resolved": "Engineering resolved the escalation",
                "escalation_declined": "Engineering declined the escalation",
                "escalation_linked": "Escalation linked to an engineering ticket",
                "escalation_withdrawn": "Escalation withdrawn",
                "escalation_updated": "Escalation package updated",
            }
        )
