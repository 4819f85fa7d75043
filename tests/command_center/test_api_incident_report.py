"""incident-report over HTTP (issue 16, item 5): a download in one request, audit-logged, storing nothing, and
bad parameters answered 400 naming them."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from command_center.models import AuditEvent, HealthTransition
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.factories import LogEventFactory, TraceIndexEntryFactory

pytestmark = pytest.mark.django_db

URL = "observability:incident-report"


@pytest.fixture
def window():
    end = timezone.now().replace(second=0, microsecond=0)
    start = end - timedelta(minutes=30)
    LogEventFactory(ts=start + timedelta(minutes=1), event="voice.join_failed", message="@SUM(A1)")
    TraceIndexEntryFactory(ts=start + timedelta(minutes=2), trace_id="f" * 32, status_code="500")
    HealthTransition.objects.create(ts=start + timedelta(minutes=3), service="redis", old_status="healthy",
                                    new_status="down", detail="connection refused")
    return {"from": start.isoformat(), "to": end.isoformat()}


def test_one_request_downloads_the_whole_report_as_a_zip(admin_client, window):
    response = admin_client.get(reverse(URL), window)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="kaiku-ops-incident-')
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    report = json.loads(archive.read("report.json"))
    assert [item["message"] for item in report["logs"]["items"]] == ["@SUM(A1)"]
    assert "'@SUM(A1)" in archive.read("logs.csv").decode()  # the export's formula guard
    assert [t["trace_id"] for t in report["traces"]] == ["f" * 32]
    assert [(t["service"], t["new_status"]) for t in report["health_transitions"]] == [("redis", "down")]
    assert "## Health transitions" in archive.read("report.md").decode()


def test_json_and_markdown_alone(admin_client, window):
    body = admin_client.get(reverse(URL), {**window, "format": "json"})
    assert body["Content-Type"] == "application/json"
    assert json.loads(body.content)["window"]["seconds"] == 1800
    text = admin_client.get(reverse(URL), {**window, "format": "markdown"})
    assert text["Content-Type"].startswith("text/markdown")
    assert text.content.decode().startswith("# Kaiku incident report")


def test_it_is_audit_logged_and_stores_nothing_else(admin_client, system_admin, window):
    transitions = HealthTransition.objects.count()
    admin_client.get(reverse(URL), window)
    event = AuditEvent.objects.get()
    assert (event.user, event.endpoint, event.params["from"]) == (system_admin, "incident-report", window["from"])
    assert HealthTransition.objects.count() == transitions


@pytest.mark.parametrize(("params", "bad"), [
    ({"format": "pdf"}, "format"),
    ({"range": "2h"}, "range"),
    ({"from": "yesterday"}, "from"),
    ({"from": "2026-11-29T12:00:00Z", "to": "2026-11-29T11:00:00Z"}, "from"),
    ({"level": "ERROR"}, "level"),
])
def test_bad_parameters_are_named(admin_client, params, bad):
    response = admin_client.get(reverse(URL), params)
    assert response.status_code == 400
    assert list(response.json()["detail"]) == [bad]


def test_only_system_admins_get_a_report(client, plain_user):
    assert client.get(reverse(URL)).status_code == 401
    client.force_login(plain_user)
    assert client.get(reverse(URL)).status_code == 403
