"""HTTP and WebSocket in one process (daphne). WebSocket routes come from command_center.

HTTP passes kaiku_ops.body_limits first (refusals decided on the headers, bodies capped while read);
sockets must come from exactly this site's origin (kaiku_ops.security), and a path no consumer serves is
refused at the handshake.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kaiku_ops.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from kaiku_ops.body_limits import RequestGate  # noqa: E402
from kaiku_ops.routing import websocket_urlpatterns  # noqa: E402
from kaiku_ops.security import ExactOriginValidator, StaticFilesHandler, UnknownSocketRoute  # noqa: E402

http_app = django_asgi_app
if settings.SERVE_STATIC:
    http_app = StaticFilesHandler(django_asgi_app)

socket_routes = URLRouter([*websocket_urlpatterns, re_path(r"", UnknownSocketRoute())])

application = ProtocolTypeRouter({
    "http": RequestGate(http_app),
    "websocket": ExactOriginValidator(AuthMiddlewareStack(socket_routes)),
})
