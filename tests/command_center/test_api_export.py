"""export: streamed, capped at 10,000 rows, named for what and when, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import timedelta

import pytest
from django.db import connections
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from command_center.selectors import export
from command_center.selectors.export import safe_cell
from telemetry.storage import insert_log_events
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.factories import LogEventFactory, MetricSampleFactory, TraceIndexEntryFactory

pytestmark = pytest.mark.django_db


def download(client, **params):
    response = client.get(reverse("observability:export"), params)
    assert response.status_code == 200, response.content[:300]
    assert isinstance(response, StreamingHttpResponse)
    return response, b"".join(response.streaming_content).decode()


def test_logs_csv_export_is_capped_at_10000_rows_newest_first(admin_client):
    now = timezone.now()
    insert_log_events(
        {
            "id": uuid.uuid4(),
            "ts": now - timedelta(seconds=i),
            "level": "ERROR",
            "service": "vc-server",
            "domain": "db",
            "event": f"db.error.{i}",
            "message": "boom",
            "trace_id": None,
            "span_id": None,
        }
        for i in range(10_005)
    )
    response, text = download(admin_client, type="logs", format="csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["ts", "level", "service", "domain", "event", "message", "trace_id", "span_id"]
    assert len(rows) - 1 == 10_000
    assert rows[1][4] == "db.error.0" and rows[-1][4] == "db.error.9999"
    assert response["X-Export-Truncated"] == "10000" and response["X-Export-Row-Cap"] == "10000"
    assert re.fullmatch(
        r'attachment; filename="kaiku-ops-logs-\d{8}T\d{4}Z\.csv"', response["Content-Disposition"]
    )


@pytest.mark.parametrize("kind", ["logs", "traces", "metrics"])
def test_an_export_says_in_a_header_when_the_cap_left_rows_out(admin_client, monkeypatch, kind):
    monkeypatch.setattr(export, "EXPORT_MAX_ROWS", 3)
    factory = {"logs": LogEventFactory, "traces": TraceIndexEntryFactory, "metrics": MetricSampleFactory}[kind]
    now = timezone.now()
    for age in range(3):
        factory(ts=now - timedelta(minutes=age + 1))

    response, text = download(admin_client, type=kind, format="json")
    assert len(json.loads(text)) == 3
    assert "X-Export-Truncated" not in response and response["X-Export-Row-Cap"] == "3"

    factory(ts=now - timedelta(minutes=10))  # the oldest one is left out
    response, text = download(admin_client, type=kind, format="json")
    assert len(json.loads(text)) == 3
    assert response["X-Export-Truncated"] == "3"


def test_csv_cells_that_would_run_as_formulas_are_quoted(admin_client):
    LogEventFactory(event='=HYPERLINK("http://evil")', message="+1+cmd|' /C calc'!A0")
    LogEventFactory(event="@SUM(A1)", message="-2")
    _, text = download(admin_client, type="logs", format="csv", level="ERROR")
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert '\'=HYPERLINK("http://evil")' in cells and "'+1+cmd|' /C calc'!A0" in cells
    assert "'@SUM(A1)" in cells and "'-2" in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=1+2", "'=1+2"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("plain", "plain"), (-3, -3), (None, None)],
)
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_traces_json_export_applies_the_list_filters(admin_client):
    slow = TraceIndexEntryFactory(duration_ms=5000, status_code="200")
    TraceIndexEntryFactory(duration_ms=10, status_code="200")
    response, text = download(admin_client, type="traces", format="json", status="slow")
    assert [row["trace_id"] for row in json.loads(text)] == [slow.trace_id]
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].endswith('.json"')


def test_metrics_export_of_one_metric(admin_client):
    MetricSampleFactory(metric_name="kaiku_ws_reconnects_total", labels={}, value_count=3, value_sum=3.0)
    MetricSampleFactory()
    _, text = download(admin_client, type="metrics", format="json", metric="kaiku_ws_reconnects_total")
    assert [(row["metric_name"], row["value_count"]) for row in json.loads(text)] == [
        ("kaiku_ws_reconnects_total", 3)
    ]


def test_an_empty_export_still_has_its_header(admin_client):
    _, text = download(admin_client, type="traces", format="csv")
    assert text.strip() == "ts,trace_id,span_name,domain,route,status_code,duration_ms,service"


def test_filters_of_another_type_are_rejected(admin_client):
    response = admin_client.get(reverse("observability:export"), {"type": "metrics", "level": "ERROR"})
    assert response.status_code == 400
    assert response.json()["detail"] == {"level": "not a filter of type=metrics"}


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_export_streams_chunk_by_chunk(async_client, system_admin):
    from asgiref.sync import sync_to_async

    await sync_to_async(insert_log_events)(
        {
            "id": uuid.uuid4(),
            "ts": timezone.now() - timedelta(seconds=i),
            "level": "WARN",
            "service": "vc-server",
            "domain": "ws",
            "event": f"ws.slow.{i}",
            "message": "slow consumer",
            "trace_id": None,
            "span_id": None,
        }
        for i in range(1200)
    )
    await async_client.aforce_login(system_admin)
    response = await async_client.get(reverse("observability:export"), {"type": "logs", "format": "csv"})
    assert response.status_code == 200
    assert response.is_async  # an async iterator: ASGI sends each chunk as it is produced
    chunks = [chunk async for chunk in response.streaming_content]
    assert len(chunks) >= 3  # 500 rows per chunk
    assert b"".join(chunks).decode().count("\n") == 1201
    await sync_to_async(connections.close_all)()  # the connection the streaming thread opened
