"""Every URL of the API, enumerated from the resolver, against every kind of user."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, get_resolver, reverse

from command_center.api import urls as api_urls
from command_center.models import AuditEvent
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401

pytestmark = pytest.mark.django_db


def api_url_names() -> list[str]:
    resolver = get_resolver()
    names = []
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        names.append(f"{api_urls.app_name}:{pattern.name}")
    # Every API pattern is reachable under the mount point.
    assert all(reverse(name).startswith("/api/admin/observability/") for name in names)
    assert resolver.resolve("/api/admin/observability/summary").url_name == "summary"
    return names


# Minimal valid queries for endpoints with required parameters.
REQUIRED_QUERY = {
    "observability:trends": {"metric": "kaiku_http_requests_total"},
    "observability:export": {"type": "logs"},
    "observability:trace-waterfall": {"trace_id": "0102030405060708090a0b0c0d0e0f10"},
}
API_URLS = api_url_names()


def test_the_api_has_every_endpoint_of_the_design():
    paths = {reverse(name).removeprefix("/api/admin/observability/") for name in API_URLS}
    assert paths == {
        "summary",
        "trends",
        "top-routes",
        "top-errors",
        "voice/summary",
        "voice/quality",
        "voice/worst-sessions",
        "infrastructure",
        "logs",
        "traces",
        "trace-list",
        "trace-waterfall",
        "error-groups",
        "incident-report",
        "export",
        "links",
        "config",
        "openapi.json",
    }


@pytest.mark.parametrize("name", API_URLS)
def test_anonymous_gets_401_json_not_a_login_redirect(client, name):
    response = client.get(reverse(name), REQUIRED_QUERY.get(name, {}))
    assert response.status_code == 401
    assert response.json()["error"] == "authentication required"


@pytest.mark.parametrize("user_fixture", ["plain_user", "staff_user"])
@pytest.mark.parametrize("name", API_URLS)
def test_users_without_the_permission_get_403_json(client, request, name, user_fixture):
    client.force_login(request.getfixturevalue(user_fixture))
    response = client.get(reverse(name), REQUIRED_QUERY.get(name, {}))
    assert response.status_code == 403
    assert response.json() == {"error": "permission denied"}
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("user_fixture", ["system_admin", "superuser"])
@pytest.mark.parametrize("name", API_URLS)
def test_system_admins_and_superusers_are_served_and_audited(client, request, name, user_fixture):
    user = request.getfixturevalue(user_fixture)
    client.force_login(user)
    response = client.get(reverse(name), REQUIRED_QUERY.get(name, {}))
    assert response.status_code == 200, response.content[:300]
    event = AuditEvent.objects.get()
    assert (event.action, event.user, event.endpoint) == (
        "admin.observability.view",
        user,
        name.split(":")[1],
    )


def test_an_inactive_permission_holder_is_refused(client, system_admin):
    system_admin.is_active = False
    system_admin.save()
    client.force_login(system_admin)
    assert client.get(reverse("observability:config")).status_code in (401, 403)


def test_only_get_is_allowed(client, superuser):
    client.force_login(superuser)
    response = client.post(reverse("observability:config"))
    assert response.status_code == 405
    assert response.json() == {"error": "method not allowed"}
