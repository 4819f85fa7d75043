"""WebSocket URL patterns (the Channels side of urls.py)."""

websocket_urlpatterns: list = []
