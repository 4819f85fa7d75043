"""WebSocket URL patterns (the Channels side of urls.py)."""

from command_center.routing import websocket_urlpatterns

__all__ = ["websocket_urlpatterns"]
