"""OTLP/HTTP paths, mounted at /v1/ by kaiku_ops.urls."""

from django.urls import path

from telemetry.ingest import views

urlpatterns = [
    path("metrics", views.metrics, name="otlp-metrics"),
    path("logs", views.logs, name="otlp-logs"),
    path("traces", views.traces, name="otlp-traces"),
]
