"""Read-only admin for maintenance job runs (purge, rollup refresh, partitions)."""

from __future__ import annotations

from django.contrib import admin

from telemetry.models import JobRun


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("job", "started_at", "duration_ms", "ok")
    list_filter = ("job", "ok")
    ordering = ("-started_at",)
    readonly_fields = ("job", "started_at", "finished_at", "duration_ms", "ok", "details")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
