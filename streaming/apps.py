from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "streaming"
    verbose_name = "Streaming"

    def ready(self) -> None:
        from streaming.access import tokens  # noqa: F401  (its signals revoke JWTs on a password change)
