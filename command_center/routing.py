"""WebSocket URL patterns of the Command Center (placeholder until the push channel lands)."""

websocket_urlpatterns: list = []
