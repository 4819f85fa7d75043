"""Security pieces of the site: a site-wide Content-Security-Policy (Django 5.2 has none built in), exact
WebSocket origins, a static files handler that refuses path traversal with a 404, and login throttling.

The policy:

No inline script and no inline style anywhere: the admin templates we render need neither (the one
inline `<style>` of django.contrib.admin appears only on change lists without any action bar, which no
ModelAdmin here has), and the Command Center sets element sizes through the CSSOM, which CSP allows.
A view that sets a policy of its own keeps it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import DisallowedHost, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.http.request import split_domain_port, validate_host
from django.utils.deprecation import MiddlewareMixin

CSP_HEADER = "Content-Security-Policy"

_FIXED_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
)


def content_security_policy(request: HttpRequest) -> str:
    """The policy for one response. WebSockets may reach only this host: `ws:`/`wss:` alone would let
    an injected script stream data to any server."""
    try:
        host = request.get_host()
    except DisallowedHost:  # the response is already a 400; the header must not echo the bad Host
        connect = "connect-src 'self'"
    else:
        connect = f"connect-src 'self' ws://{host} wss://{host}"
    return "; ".join((*_FIXED_DIRECTIVES, connect))


class ContentSecurityPolicyMiddleware(MiddlewareMixin):  # the mixin makes it sync and async capable
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if CSP_HEADER not in response:
            response[CSP_HEADER] = content_security_policy(request)
        return response


# --- WebSocket origins ---------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_parts(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin such as https://ops.example.org:8443; None when it is not one."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.path not in ("", "/") or parts.query or parts.username:
        return None
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def _socket_scheme(scope: dict) -> str:
    """http or https: the scheme a page of this site has when it opens this socket. Daphne puts no scheme in a
    socket's scope; behind the front door (KAIKU_BEHIND_PROXY) nginx says it in X-Forwarded-Proto."""
    scheme = scope.get("scheme")
    if scheme in ("ws", "wss"):
        return "https" if scheme == "wss" else "http"
    if getattr(settings, "KAIKU_BEHIND_PROXY", False):
        for name, value in scope.get("headers", ()):
            if name.lower() == b"x-forwarded-proto":
                return "https" if value.decode("latin-1").strip().lower() == "https" else "http"
    return "http"


def socket_origin_allowed(scope: dict) -> bool:
    """The exact-origin rule of Django's CSRF check, for a socket: the Origin header must be this site itself
    (scheme, host and port of the request, host in ALLOWED_HOSTS) or one of CSRF_TRUSTED_ORIGINS
    (`https://*.example.org` allows its subdomains, with that scheme and port)."""
    headers = {name.lower(): value.decode("latin-1") for name, value in scope.get("headers", ())}
    origin = _origin_parts(headers.get(b"origin", ""))
    if origin is None:
        return False
    scheme = _socket_scheme(scope)
    host_header = headers.get(b"host", "")
    host, port = split_domain_port(host_header)
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    if host and validate_host(host, allowed_hosts):
        own = _origin_parts(f"{scheme}://{host_header}")
        if own is not None and own == origin:
            return True
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in trusted
        parts = _origin_parts(trusted.replace("://*.", "://", 1))
        if parts is None:
            continue
        if parts == origin:
            return True
        if wildcard and origin[0] == parts[0] and origin[2] == parts[2] and origin[1].endswith("." + parts[1]):
            return True
    return False


class ExactOriginValidator:
    """Refuses the handshake of a socket whose Origin is not exactly allowed (socket_origin_allowed)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not socket_origin_allowed(scope):
            message = await receive()  # websocket.connect
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 4403})  # before accept: daphne answers 403
            return None
        return await self.app(scope, receive, send)


class UnknownSocketRoute:
    """The socket router's last route: refuses the handshake of a path no consumer serves (no traceback)."""

    async def __call__(self, scope, receive, send):
        while True:
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 4404})
            else:  # websocket.disconnect (or anything else): the end of this socket
                return


# --- static files ------------------------------------------------------------------------------------------

class StaticFilesHandler(ASGIStaticFilesHandler):
    """Django's static files handler (used when KAIKU_SERVE_STATIC is on, i.e. without the front door),
    answering 404 instead of a 500 to a path that leaves the static directories (`/static/%2e%2e/...`)."""

    async def get_response_async(self, request):
        try:
            return await super().get_response_async(request)
        except SuspiciousOperation:
            return HttpResponseNotFound(b"not found", content_type="text/plain")


# --- login throttling (django-axes) -------------------------------------------------------------------------

class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check for every login through a request (the admin's login form). A call of
    `authenticate()` without a request (a management command, the test client's `login()`) has no client to
    throttle and goes to the next backend as before."""

    def authenticate(self, request=None, *args, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)
