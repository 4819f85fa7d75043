"""Traces as whole traces and the incident report, in a browser (issue 16, items 3 and 5): the Traces tab lists
one row per trace, a row opens into a waterfall drawn to scale with the trace's logs within an adjustable
margin; the toolbar's Incident report downloads the zip of the page's window. Real daphne, Debian's Chromium."""

from __future__ import annotations

import json
import re
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.e2e.test_command_center_page import make_user, open_command_center
from tests.factories import LogEventFactory, TraceIndexEntryFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("empty_telemetry_tables")]

TRACE = "9f" * 16


def seed_trace():
    start = timezone.now().replace(microsecond=0) - timedelta(minutes=10)
    ms = timedelta(milliseconds=1)
    TraceIndexEntryFactory(trace_id=TRACE, ts=start, duration_ms=1000, domain="api", status_code="200",
                           span_name="POST /api/v1/voice/join", route="/api/v1/voice/join")
    TraceIndexEntryFactory(trace_id=TRACE, ts=start + 500 * ms, duration_ms=250, domain="db", status_code="ERROR",
                           span_name="UPDATE rooms", route=None)
    TraceIndexEntryFactory(ts=start - timedelta(minutes=2), duration_ms=40, status_code="200",
                           span_name="GET /api/v1/me", route="/api/v1/me")
    LogEventFactory(trace_id=TRACE, ts=start + timedelta(seconds=2), event="voice.join_failed",
                    message="room is full")
    LogEventFactory(trace_id=TRACE, ts=start + timedelta(seconds=50), event="voice.retry_failed",
                    message="gave up")
    return start


def test_a_trace_row_opens_into_a_waterfall_with_its_logs(page):
    make_user("e2e-admin", superuser=True)
    seed_trace()
    open_command_center(page, "e2e-admin", "?tab=traces")

    rows = page.locator("#cc-traces-table tbody tr.cc-trace-row")
    expect(rows).to_have_count(2)
    row = page.locator(f"#cc-traces-table tr[data-trace-id='{TRACE}']")
    expect(row).to_contain_text("2")  # spans
    expect(row).to_contain_text("1,000 ms · 1 failed")
    row.get_by_role("button", name="POST /api/v1/voice/join").click()

    spans = page.locator(".cc-waterfall-span")
    expect(spans).to_have_count(2)
    expect(spans.nth(1)).to_have_class(re.compile("cc-waterfall-error"))
    expect(spans.nth(1)).to_have_attribute("data-depth", "1")
    # To scale: the db span starts half-way through the 1 s trace and lasts a quarter of it.
    track = spans.nth(1).locator(".cc-waterfall-track").bounding_box()
    bar = spans.nth(1).locator(".cc-waterfall-bar").bounding_box()
    assert abs((bar["x"] - track["x"]) / track["width"] - 0.5) < 0.02
    assert abs(bar["width"] / track["width"] - 0.25) < 0.02

    logs = page.locator(".cc-waterfall-logs")
    expect(logs).to_contain_text("voice.join_failed")
    expect(logs).not_to_contain_text("voice.retry_failed")  # 49 s after the trace's end: outside ±30 s
    logs.get_by_label("Margin around the trace, in seconds").fill("60")
    logs.get_by_role("button", name="Apply").click()
    expect(page.locator(".cc-waterfall-logs")).to_contain_text("voice.retry_failed")
    assert page.watch.errors == []


def test_the_traces_tab_still_lists_individual_spans_on_request(page):
    make_user("e2e-admin", superuser=True)
    seed_trace()
    open_command_center(page, "e2e-admin", "?tab=traces")
    expect(page.locator("#cc-traces-table tbody tr.cc-trace-row")).to_have_count(2)  # loaded: the form is synced
    page.locator("#cc-trace-filters select[name=view]").select_option("spans")
    page.locator("#cc-trace-filters").get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile("traces_view=spans"))
    expect(page.locator("#cc-spans-table tbody tr")).to_have_count(3)
    expect(page.locator("#cc-traces-table")).to_be_hidden()


def test_incident_report_downloads_the_zip_of_the_pages_window(page):
    make_user("e2e-admin", superuser=True)
    seed_trace()
    open_command_center(page, "e2e-admin", "?range=1h")
    button = page.get_by_role("link", name="Incident report")
    expect(button).to_have_attribute("href", re.compile(r"incident-report\?range=1h"))
    with page.expect_download() as download_info:
        button.click()
    download = download_info.value
    assert re.fullmatch(r"kaiku-ops-incident-\d{8}T\d{4}Z-\d{8}T\d{4}Z\.zip", download.suggested_filename)
    archive = zipfile.ZipFile(download.path())
    report = json.loads(archive.read("report.json"))
    assert report["window"]["seconds"] == 3600
    assert TRACE in [trace["trace_id"] for trace in report["traces"]]
    assert [log["event"] for log in report["logs"]["items"]] == ["voice.retry_failed", "voice.join_failed"]
    assert archive.read("report.md").decode().startswith("# Kaiku incident report")

    page.get_by_role("button", name="6h").click()
    expect(button).to_have_attribute("href", re.compile(r"incident-report\?range=6h"))
