"""Requests refused before their body is read: the ASGI layer in front of Django.

Django's ASGI handler reads a request's whole body (into a spooled temporary file) before any view or
middleware runs, so a view can only refuse an upload after it has arrived. This layer decides from the
headers alone:

- `/v1/*` (OTLP ingestion) without a valid bearer token: 401; from an address with too many failed tries in
  the last minute: 429 with `Retry-After`; with a `Content-Length` over `TELEMETRY_MAX_BODY_BYTES`: 413.
- A body on a route that takes none (everything but `/v1/*` and the admin's forms): 413.
- A body without `Content-Length` (chunked) is passed on as it comes and stops being read the moment it
  passes the route's cap: the application is told the client went away, and the client gets a 413.

What remains (docs/reliability.md, "Refuse before reading"): daphne (Twisted) receives the whole body into
memory or a temporary file before it calls the application at all, so a client talking to daphne directly
still uploads everything before it hears the answer. The front door in deploy/ (nginx) refuses on the
headers and stops reading at its own `client_max_body_size`, so in production daphne never sees such a body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

INGEST_PREFIX = "/v1/"
# Set in the scope of an ingest request whose token this layer has checked, so the view need not ask again.
INGEST_AUTHENTICATED = "kaiku_ops.ingest_authenticated"


def body_cap(path: str, method: str) -> int:
    """The most bytes a request body may have on `path`; 0 for routes that take none."""
    if path.startswith(INGEST_PREFIX):
        return settings.TELEMETRY_MAX_BODY_BYTES if method == "POST" else 0
    if path.startswith("/admin/") and method == "POST":
        # the admin's forms (login, logout, model changes); Django refuses larger form data anyway
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return 0


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RequestGate:
    """ASGI middleware for HTTP: refuses on the headers, caps what it reads (module docstring)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "GET").upper()
        declared = _header(scope, b"content-length")
        try:
            length = int(declared) if declared is not None else None
            if length is not None and length < 0:
                raise ValueError
        except ValueError:
            await _answer(send, 400, f"Content-Length {declared[:40]!r} is not a number of bytes", scope)
            return
        if path.startswith(INGEST_PREFIX) and method == "POST":
            refused = await _ingest_refusal(scope)
            if refused:
                await refused(send)
                return
            scope = {**scope, INGEST_AUTHENTICATED: True}
        cap = body_cap(path, method)
        if length is not None and length > cap:
            await _too_large(send, scope, cap, f"the body is {length} bytes")
            return
        await _capped(self.app, scope, receive, send, cap)


async def _capped(app, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
    """Run `app`, reading at most `cap` body bytes; past the cap, stop reading and answer 413 (if the
    application has not answered yet: Django has not, it reads the whole body before anything else)."""
    state = {"read": 0, "over": False, "started": False}

    async def capped_receive() -> Message:
        if state["over"]:
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] == "http.request":
            state["read"] += len(message.get("body", b""))
            if state["read"] > cap:
                state["over"] = True
                return {"type": "http.disconnect"}  # Django stops reading and sends nothing
        return message

    async def watched_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            state["started"] = True
        await send(message)

    await app(scope, capped_receive, watched_send)
    if state["over"] and not state["started"]:
        await _too_large(send, scope, cap, f"the body passed {cap} bytes")


async def _too_large(send: Send, scope: Scope, cap: int, what: str) -> None:
    if cap:
        await _answer(send, 413, f"{what}; the limit is {cap}", scope)
    else:
        await _answer(send, 413, f"{scope.get('method', 'GET')} {scope.get('path', '')} takes no request body",
                      scope)


async def _ingest_refusal(scope: Scope) -> Callable[[Send], Awaitable[None]] | None:
    """None when an OTLP export may be read; else what to answer (429 or 401)."""
    from telemetry.ingest import views  # needs Django set up

    ip = _client_ip(scope)
    retry_after = await sync_to_async(views.auth_retry_after, thread_sensitive=False)(ip)
    if retry_after is not None:
        message = "too many failed authentication attempts from this address; retry later"
        return lambda send: _answer(send, 429, message, scope, {"Retry-After": str(retry_after)})
    if views.bearer_token_ok(_header(scope, b"authorization") or ""):
        return None
    await sync_to_async(views.record_auth_failure, thread_sensitive=False)(ip)
    return lambda send: _answer(send, 401, views.UNAUTHORIZED_MESSAGE, scope,
                                {"WWW-Authenticate": 'Bearer realm="otlp"'})


async def _answer(send: Send, status: int, message: str, scope: Scope, headers: dict[str, str] | None = None) -> None:
    """A complete response; OTLP paths get an OTLP Status in the request's encoding, the rest JSON."""
    if scope.get("path", "").startswith(INGEST_PREFIX):
        from telemetry.otlp import encode_status, grpc_code_for_http_status

        body, content_type = encode_status(grpc_code_for_http_status(status), message,
                                           _header(scope, b"content-type"))
    else:
        body, content_type = json.dumps({"error": message}).encode(), "application/json"
    raw_headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
