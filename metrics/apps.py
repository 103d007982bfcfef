from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"

    def ready(self) -> None:
        from cases import extensions
        from cases.signals import case_event_recorded

        from . import rollup, surveys

        rollup.connect()

        # The survey row is written in the resolution's transaction; its e-mail goes after commit.
        case_event_recorded.connect(surveys.on_case_event, dispatch_uid="metrics.surveys.on_case_event")
        extensions.register_event_labels({surveys.CSAT_ANSWERED: "Customer satisfaction survey answered"})
