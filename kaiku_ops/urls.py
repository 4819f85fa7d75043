from django.contrib import admin
from django.urls import include, path

from command_center.api.openapi import API_PREFIX
from kaiku_ops import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("v1/", include("telemetry.ingest.urls")),
    path(API_PREFIX.removeprefix("/"), include("command_center.api.urls")),
    path("admin/command-center/", include("command_center.pages.urls")),
    path("admin/", admin.site.urls),
]
