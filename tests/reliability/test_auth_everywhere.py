"""Every URL of the site, enumerated from the resolvers (HTTP) and kaiku_ops.routing (WebSocket), tried as
anonymous, plain user, staff without permission, Command Center permission holder and superuser.

A URL that no rule below classifies fails the suite, so a new endpoint must be placed deliberately:
public (with a reason), ingestion (token), Command Center (can_view_command_center) or Django admin."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.admin.sites import all_sites
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from kaiku_ops.asgi import application
from kaiku_ops.routing import websocket_urlpatterns

ROLES = ("anonymous", "plain_user", "staff_user", "system_admin", "superuser")
ADMINS = ("system_admin", "superuser")
INGEST_TOKEN = "auth-suite-ingest-token-42"

# Reachable without logging in, each with its reason.
PUBLIC = {
    "healthz": "liveness probe for the orchestrator; answers only {'status': 'ok'}",
    "readyz": "readiness probe; names failing backing services, no data",
    "admin:login": "the login form itself",
    "admin:logout": "logging out needs no login (POST only, CSRF protected)",
}
# Django admin pages any active staff member may open whatever their permissions (Django's design).
ADMIN_PAGES_FOR_ANY_STAFF = {
    "admin:index": "lists only the apps the user has permissions for (none: an empty page)",
    "admin:password_change": "staff change their own password",
    "admin:password_change_done": "confirmation page of the above",
    "admin:jsi18n": "the admin's JavaScript translation catalogue",
}
# Reachable by nobody as the project stands, with the reason.
NOBODY = {
    "admin:autocomplete": "no ModelAdmin declares autocomplete_fields, so it answers 403 to everyone",
    "admin:telemetry_jobrun_add": "job runs are written by the jobs only; read-only in the admin",
    "admin:telemetry_jobrun_delete": "the last purge/refresh shown in the UI must not be erasable",
    "admin:command_center_auditevent_add": "the audit trail is written by the views only",
    "admin:command_center_auditevent_delete": "an audit trail nobody can prune from the admin",
}
INGESTION = {"otlp-metrics", "otlp-logs", "otlp-traces"}
COMMAND_CENTER_NAMESPACES = ("observability", "command_center_pages")

# Example values for URL parameters, by parameter name.
EXAMPLE_KWARGS = {"object_id": "1", "content_type_id": "1", "id": "1", "app_label": "auth"}
# Patterns without a name cannot be reversed: the concrete path tried for each.
UNNAMED_EXAMPLES = {
    "admin/(?P<url>.*)$": "/admin/no-such-page/",
}


@dataclass(frozen=True)
class Endpoint:
    pattern: str
    name: str | None
    path: str
    csrf_exempt: bool

    def __str__(self) -> str:
        return self.name or self.pattern


def _walk(patterns, prefix: str = "", namespace: str | None = None):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace) if part) or None
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield prefix + str(entry.pattern), name, entry


def _concrete_path(pattern: str, name: str | None, entry: URLPattern) -> str:
    if name is None:
        if pattern.endswith("<path:object_id>/"):  # the admin's redirect from the old change URL
            return "/" + pattern.replace("<path:object_id>", "1")
        if pattern not in UNNAMED_EXAMPLES:
            raise AssertionError(f"URL pattern {pattern!r} has no name: add its path to UNNAMED_EXAMPLES")
        return UNNAMED_EXAMPLES[pattern]
    groups = set(entry.pattern.regex.groupindex)
    missing = groups - set(EXAMPLE_KWARGS)
    if missing:
        raise AssertionError(f"URL {name!r} takes {sorted(missing)}: add example values to EXAMPLE_KWARGS")
    return reverse(name, kwargs={group: EXAMPLE_KWARGS[group] for group in groups})


def site_endpoints() -> list[Endpoint]:
    return [Endpoint(pattern, name, _concrete_path(pattern, name, entry),
                     getattr(entry.callback, "csrf_exempt", False))
            for pattern, name, entry in _walk(get_resolver().url_patterns)]


ENDPOINTS = site_endpoints()


def category(endpoint: Endpoint) -> str:
    name = endpoint.name or ""
    if name in PUBLIC:
        return "public"
    if name in INGESTION:
        return "ingestion"
    if name.split(":")[0] in COMMAND_CENTER_NAMESPACES:
        return "command_center"
    if name in ADMIN_PAGES_FOR_ANY_STAFF:
        return "admin_any_staff"
    if name in NOBODY:
        return "nobody"
    if endpoint.path.startswith("/admin/") and (name.startswith("admin:") or not name):
        return "admin_model"
    raise AssertionError(f"{endpoint} ({endpoint.path}) is in no access category: classify it in this file")


@pytest.fixture
def client_as(request, client):
    role = request.param
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))
    return role, client


def outcome(client, endpoint: Endpoint) -> str:
    """'login' (sent to the login page), 'refused' (401/403/405), 'missing' (the example object does not
    exist: 404, or the admin's redirect to its index) or 'ok'."""
    response = client.get(endpoint.path, follow=True)
    assert response.status_code < 500, (endpoint.path, response.status_code)
    final_path = response.request["PATH_INFO"]
    if final_path == reverse("admin:login") and endpoint.name != "admin:login":
        return "login"
    if response.status_code in (401, 403, 405):
        return "refused"
    if response.status_code == 404 or (response.redirect_chain and final_path == reverse("admin:index")):
        return "missing"
    return "ok"


def may_reach(kind: str, role: str) -> bool:
    return {
        "public": True,
        "ingestion": False,  # a session never replaces the ingest token
        "command_center": role in ADMINS,
        "admin_any_staff": role not in ("anonymous", "plain_user"),
        "admin_model": role == "superuser",
        "nobody": False,
    }[kind]


def test_every_url_is_classified():
    kinds = {endpoint.path: category(endpoint) for endpoint in ENDPOINTS}

    assert set(kinds.values()) == {"public", "ingestion", "command_center", "admin_any_staff", "admin_model",
                                   "nobody"}
    assert len(ENDPOINTS) >= 30


@pytest.mark.django_db
@pytest.mark.parametrize("client_as", ROLES, indirect=True)
def test_each_role_reaches_exactly_what_it_may(client_as, settings):
    settings.TELEMETRY_INGEST_TOKEN = INGEST_TOKEN
    role, client = client_as
    wrong = {}
    for endpoint in ENDPOINTS:
        if endpoint.name == "admin:logout":
            continue  # GET is refused (405) for everyone; covered by the CSRF test
        kind, seen = category(endpoint), outcome(client, endpoint)
        allowed = {"ok", "missing"} if may_reach(kind, role) else {"login", "refused"}
        if kind == "admin_model" and role in ("staff_user", "system_admin"):
            # Django's history view redirects for a missing object before checking permissions.
            allowed.add("missing")
        if seen not in allowed:
            wrong[endpoint.path] = f"{kind}: {seen}"

    assert wrong == {}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["anonymous", "plain_user"])
def test_command_center_api_answers_json_401_or_403_to_outsiders(role, client, request):
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))
    for endpoint in ENDPOINTS:
        if endpoint.name and endpoint.name.startswith("observability:"):
            response = client.get(endpoint.path)

            assert response.status_code == (401 if role == "anonymous" else 403), endpoint.path
            assert response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
def test_ingestion_needs_the_token_and_nothing_else_opens_it(client, superuser, settings):
    settings.TELEMETRY_INGEST_TOKEN = INGEST_TOKEN
    client.force_login(superuser)
    for endpoint in ENDPOINTS:
        if endpoint.name in INGESTION:
            for authorization in ("", "Bearer", "Bearer ", f"Basic {INGEST_TOKEN}", f"Bearer {INGEST_TOKEN}x",
                                  f"Bearer {INGEST_TOKEN[:-1]}", f"bearer{INGEST_TOKEN}"):
                response = client.generic("POST", endpoint.path, b"", CONTENT_TYPE="application/x-protobuf",
                                          HTTP_AUTHORIZATION=authorization)
                assert response.status_code == 401, (endpoint.path, authorization)
            # An empty protobuf body is a valid, empty export request.
            response = client.generic("POST", endpoint.path, b"", CONTENT_TYPE="application/x-protobuf",
                                      HTTP_AUTHORIZATION=f"Bearer {INGEST_TOKEN}")
            assert response.status_code == 200, endpoint.path


def test_only_the_token_authenticated_receivers_skip_csrf():
    exempt = {str(endpoint) for endpoint in ENDPOINTS if endpoint.csrf_exempt}

    assert exempt == INGESTION


@pytest.mark.django_db
def test_no_post_without_a_csrf_token_is_accepted(superuser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    accepted = {}
    for endpoint in ENDPOINTS:
        if endpoint.csrf_exempt:
            continue
        response = client.post(endpoint.path, {"name": "x"})
        if response.status_code not in (403, 405):
            accepted[endpoint.path] = response.status_code

    assert accepted == {}


def test_every_admin_site_is_the_one_whose_urls_were_tried():
    """A second AdminSite mounted elsewhere would escape the 'admin_model' rule above."""
    assert [site.name for site in all_sites] == ["admin"]


# --- WebSocket routes ------------------------------------------------------------------------------------

def socket_paths() -> list[str]:
    paths = []
    for entry in websocket_urlpatterns:
        pattern = str(entry.pattern)
        assert not re.search(r"[<(]", pattern), f"socket route {pattern!r} takes parameters: add an example"
        paths.append("/" + pattern.lstrip("^").rstrip("$"))
    return paths


async def socket_as(role: str, path: str, request, origin: bytes = b"http://127.0.0.1:8000"
                    ) -> tuple[WebsocketCommunicator, bool]:
    headers = [(b"origin", origin), (b"host", b"127.0.0.1:8000")]
    if role != "anonymous":
        user = await database_sync_to_async(request.getfixturevalue)(role)

        @database_sync_to_async
        def login_cookie() -> str:
            client = Client()
            client.force_login(user)
            return client.cookies[settings.SESSION_COOKIE_NAME].value

        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={await login_cookie()}".encode()))
    socket = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await socket.connect(timeout=5)
    return socket, connected


async def stays_open(socket: WebsocketCommunicator) -> bool:
    return await socket.receive_nothing(timeout=1.0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
async def test_every_socket_route_admits_only_command_center_admins(role, request):
    for path in socket_paths():
        socket, connected = await socket_as(role, path, request)
        admitted = connected and await stays_open(socket)
        await socket.disconnect()

        assert admitted == (role in ADMINS), (path, role)


@pytest.mark.django_db(transaction=True)
async def test_no_socket_route_admits_a_page_from_another_origin(request):
    for path in socket_paths():
        socket, connected = await socket_as("superuser", path, request, origin=b"https://evil.example")
        await socket.disconnect()

        assert not connected, path
