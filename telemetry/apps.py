from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    """The write side: OTLP ingestion, storage, aggregation, partitions, retention, rollups."""

    name = "telemetry"
    verbose_name = "Telemetry storage"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from telemetry import checks  # noqa: F401 - registers the system checks
