from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "sla"
    verbose_name = "SLA"

    def ready(self) -> None:
        from cases.signals import case_event_recorded

        from . import services

        # Clocks move inside the case's transaction, with the case locked (see cases/signals.py).
        case_event_recorded.connect(services.on_case_event, dispatch_uid="sla.on_case_event")

        from supportdesk.core.health import register_readiness_check

        from . import health

        register_readiness_check("sla_sweep", "SLA sweep", health.check_sweep)

        from supportdesk.core.prometheus import register_scrape_figures

        register_scrape_figures("sla", health.sweep_figures)

        from django.utils import timezone

        from cases import extensions

        from . import events, selectors

        extensions.register_case_panel("sla/_case_panel.html", slot="head", order=10)
        extensions.register_queue_column(
            "SLA",
            "sla/_queue_cell.html",
            load=lambda cases: selectors.clocks_for_cases([c.pk for c in cases], now=timezone.now()),
            order=10,
        )
        extensions.register_event_labels(events.LABELS)
