from django.apps import AppConfig


class CommandCenterConfig(AppConfig):
    """The read side: selectors, health probes, the admin API, pages and live pushes."""

    name = "command_center"
    verbose_name = "Command Center"
    default_auto_field = "django.db.models.BigAutoField"
