from django.apps import AppConfig


class CommandCenterConfig(AppConfig):
    """The read side: selectors, health probes, the admin API, pages and live pushes."""

    name = "command_center"
    verbose_name = "Command Center"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from command_center import live_health, push, push_tasks  # noqa: F401  (push_tasks registers a task)

        push.connect_signals()
        live_health.connect_signals()

        from command_center import checks  # noqa: F401  (registers the configuration system check)
