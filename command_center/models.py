from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One access to the Command Center (`admin.observability.view`) or another audited action.

    Its Meta also carries the `view_command_center` permission that makes a user a system admin
    for the Command Center without making them a superuser.
    """

    VIEW = "admin.observability.view"

    ts = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                             related_name="+")
    username = models.CharField(max_length=150, blank=True)
    endpoint = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-ts"]
        indexes = [models.Index(fields=["action", "-ts"])]
        permissions = [("view_command_center", "Can view the Command Center (system admin)")]

    def __str__(self) -> str:
        return f"{self.ts:%Y-%m-%d %H:%M:%S} {self.action} {self.username} {self.endpoint}"


class HealthTransition(models.Model):
    """A service of the health matrix changed state (written by the probe task, read by the incident view)."""

    ts = models.DateTimeField(db_index=True)
    service = models.CharField(max_length=32)
    old_status = models.CharField(max_length=16)
    new_status = models.CharField(max_length=16)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-ts"]
        indexes = [models.Index(fields=["service", "-ts"])]

    def __str__(self) -> str:
        return f"{self.ts:%Y-%m-%d %H:%M:%S} {self.service}: {self.old_status} → {self.new_status}"
