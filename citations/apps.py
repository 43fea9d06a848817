from django.apps import AppConfig


class CitationsConfig(AppConfig):
    name = "citations"
    verbose_name = "Knowledge base"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the receivers)
