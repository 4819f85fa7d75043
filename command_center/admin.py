from django.contrib import admin

from command_center.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Audit events are evidence: visible to admins, never editable."""

    list_display = ("ts", "action", "username", "endpoint")
    list_filter = ("action",)
    search_fields = ("username", "endpoint")
    date_hierarchy = "ts"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
