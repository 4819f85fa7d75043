"""URLs of the admin observability API (mounted at /api/admin/observability/), one per parameter-table row."""

from django.urls import path

from command_center.api import views

app_name = "observability"

_VIEWS = (
    views.summary,
    views.trends_view,
    views.top_routes,
    views.top_errors,
    views.error_groups_view,
    views.voice_summary,
    views.voice_quality,
    views.voice_worst_sessions,
    views.infrastructure_view,
    views.logs_view,
    views.traces_view,
    views.trace_list_view,
    views.trace_waterfall_view,
    views.export_view,
    views.incident_report_view,
    views.links_view,
    views.config_view,
    views.openapi_view,
)

urlpatterns = [path(view.endpoint.path, view, name=view.endpoint.name) for view in _VIEWS]
