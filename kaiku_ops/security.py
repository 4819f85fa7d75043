"""A site-wide Content-Security-Policy (Django 5.2 has none built in).

No inline script and no inline style anywhere: the admin templates we render need neither (the one
inline `<style>` of django.contrib.admin appears only on change lists without any action bar, which no
ModelAdmin here has), and the Command Center sets element sizes through the CSSOM, which CSP allows.
A view that sets a policy of its own keeps it.
"""

from __future__ import annotations

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
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
