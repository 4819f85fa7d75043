"""WebSocket URL patterns of the Command Center."""

from django.urls import path

from command_center.consumers import ObservabilityConsumer

websocket_urlpatterns = [
    path("ws/admin/observability/", ObservabilityConsumer.as_asgi(), name="observability-socket"),
]
