"""Audit of Command Center access: one event per user, endpoint and minute, Redis or not."""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.urls import reverse

from command_center import audit
from command_center.models import AuditEvent
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.command_center.test_probes import free_port

pytestmark = pytest.mark.django_db


def test_one_event_per_user_endpoint_and_minute(client, system_admin, superuser):
    client.force_login(system_admin)
    for _ in range(3):
        client.get(reverse("observability:config"), {})
    client.get(reverse("observability:links"))
    client.force_login(superuser)
    client.get(reverse("observability:config"))
    assert sorted(AuditEvent.objects.values_list("username", "endpoint")) == [
        ("ops", "config"),
        ("ops", "links"),
        ("root-admin", "config"),
    ]


def test_the_event_records_the_parameters(client, system_admin):
    client.force_login(system_admin)
    client.get(reverse("observability:logs"), {"level": "ERROR", "search": "x" * 150})
    event = AuditEvent.objects.get()
    assert event.action == "admin.observability.view"
    assert event.params == {"level": "ERROR", "search": "x" * audit.PARAM_VALUE_MAX_LENGTH}


def test_redis_outage_neither_breaks_the_api_nor_the_rate_limit(client, system_admin, settings):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": dead,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    client.force_login(system_admin)
    for _ in range(2):
        assert client.get(reverse("observability:summary")).status_code == 200
    assert AuditEvent.objects.filter(endpoint="summary").count() == 1


def test_audit_events_are_read_only_in_the_admin(rf, superuser):
    model_admin = site._registry[AuditEvent]
    request = rf.get("/")
    request.user = superuser
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
