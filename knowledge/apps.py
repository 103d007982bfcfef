from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"

    def ready(self) -> None:
        from cases import extensions

        extensions.register_case_panel("knowledge/_case_suggestions.html", slot="side", order=30)
        extensions.register_event_labels({"article_linked": "Article linked"})
