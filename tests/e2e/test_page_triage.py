"""The Command Center as an operator uses it at 3 a.m. (issue 13): every alarm clickable, every chart readable,
honest states. Real daphne, Debian's Chromium; each test fails without the behaviour it names."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from datetime import timedelta
from functools import partial

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import expect

from command_center.selectors.caching import PREFIX as CACHE_PREFIX
from command_center.selectors.overview import CACHE_KEY as SUMMARY_CACHE_KEY
from telemetry.contract import Attr, Label, Metric
from telemetry.models import MetricSample
from tests.e2e.test_command_center_page import PAGE, make_user, open_command_center, seed_metrics, trace_id
from tests.factories import (
    HTTP_DURATION_BOUNDS,
    LogEventFactory,
    MetricSampleFactory,
    TraceIndexEntryFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("empty_telemetry_tables")]

API = "**/api/admin/observability/"


# --- helpers ---------------------------------------------------------------------------------------

def send_error_logs(base_url: str, records: list[tuple[str, str, str | None]]) -> None:
    """One OTLP request carrying many ERROR records (event, message, trace id): a burst."""
    now = time.time_ns()
    log_records = []
    for index, (event, message, trace) in enumerate(records):
        record = {
            "timeUnixNano": str(now + index * 1_000_000),  # a millisecond apart, like a real storm
            "severityNumber": 17, "severityText": "ERROR", "body": {"stringValue": message},
            "attributes": [{"key": Attr.EVENT_NAME.value, "value": {"stringValue": event}},
                           {"key": Attr.KAIKU_DOMAIN.value, "value": {"stringValue": "voice"}}],
        }
        if trace:
            record |= {"traceId": trace, "spanId": trace[:16]}
        log_records.append(record)
    body = {"resourceLogs": [{
        "resource": {"attributes": [{"key": Attr.SERVICE_NAME.value, "value": {"stringValue": "vc-server"}}]},
        "scopeLogs": [{"logRecords": log_records}],
    }]}
    request = urllib.request.Request(
        f"{base_url}/v1/logs", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {settings.TELEMETRY_INGEST_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def rewrite_json(page, path: str, change) -> None:
    """Let `path` reach the real API, then hand the page `change(body)` instead of its answer."""
    def handle(route):
        response = route.fetch()
        body = response.json()
        change(body)
        route.fulfill(response=response, body=json.dumps(body), headers={**response.headers,
                                                                         "content-type": "application/json"})
    page.route(re.compile(rf"/api/admin/observability/{path}(\?|$)"), handle)


def expect_revealed(page, selector: str) -> None:
    target = page.locator(selector)
    expect(target).to_be_focused()
    expect(target).to_be_in_viewport()


# --- 1. where to click next ----------------------------------------------------------------------------

def test_vital_cards_open_the_panel_that_explains_them_in_view_and_focused(page, asgi_server):
    asgi_server.wait_until_warm()  # past the server's "Collecting data…" start
    make_user("e2e-admin", superuser=True)
    seed_metrics(minutes=30)
    TraceIndexEntryFactory(duration_ms=4200, route="/api/v1/slow", status_code="200")
    LogEventFactory(event="voice.join_failed", message="SFU rejected the join")
    page.set_viewport_size({"width": 1400, "height": 800})
    open_command_center(page, "e2e-admin", "?tab=logs")
    expect(page.locator("[data-vital=latency] .cc-value")).to_have_text(re.compile(r"\d"))

    page.locator("[data-vital=latency]").get_by_role("link", name="Latency").click()
    expect(page.get_by_role("tab", name="Golden Signals")).to_have_attribute("aria-selected", "true")
    expect_revealed(page, "#cc-signal-latency")
    slow = page.locator("#cc-signal-latency [data-table=slowTraces]")
    expect(slow).to_contain_text("/api/v1/slow")  # the slow traces of the window, next to the latency charts
    all_slow = slow.get_by_role("link", name="All slow traces →")
    expect(all_slow).to_have_attribute("href", re.compile("traces_status=slow"))

    page.evaluate("window.scrollTo(0, 0)")
    page.locator("[data-vital=errors]").get_by_role("link", name="Errors").click()
    expect(page).to_have_url(re.compile(r"signal=errors.*logs_level=ERROR|logs_level=ERROR.*signal=errors"))
    expect_revealed(page, "#cc-signal-errors")
    expect(page.locator("#cc-signal-errors")).to_contain_text("Top failing routes")
    expect(page.locator("#cc-signal-errors [data-table=errorLogs]")).to_contain_text("voice.join_failed")
    expect(page.locator("#cc-incident-signal")).to_have_value("errors")

    page.evaluate("window.scrollTo(0, 0)")
    page.locator("[data-vital=saturation]").get_by_role("link", name="Saturation").click()
    expect(page.get_by_role("tab", name="Infrastructure")).to_have_attribute("aria-selected", "true")
    expect_revealed(page, "#cc-infra-pool")
    expect(page.locator("#cc-infra-pool")).to_contain_text("35 % used")

    page.evaluate("window.scrollTo(0, 0)")
    page.locator("#cc-matrix").get_by_role("link", name="PostgreSQL").click()
    expect_revealed(page, "#cc-infra-slow-queries")
    expect(page.locator("#cc-infra-slow-queries")).to_contain_text("Top slow queries")

    page.evaluate("window.scrollTo(0, 0)")
    page.locator("#cc-matrix").get_by_role("link", name="Voice SFU").click()
    expect(page.get_by_role("tab", name="Voice")).to_have_attribute("aria-selected", "true")
    expect_revealed(page, "#cc-panel-voice")
    assert page.watch.errors == []


def test_a_feed_click_through_brings_the_logs_into_view_and_focus(page):
    make_user("e2e-admin", superuser=True)
    shared = trace_id()
    LogEventFactory(trace_id=shared, event="voice.join_failed", ts=timezone.now() - timedelta(minutes=1))
    page.set_viewport_size({"width": 1400, "height": 700})
    open_command_center(page, "e2e-admin")

    page.locator("#cc-feed").get_by_role("link", name=f"Logs of trace {shared}").click()

    expect(page).to_have_url(re.compile(f"logs_trace_id={shared}"))
    expect_revealed(page, "#cc-panel-logs")
    expect(page.locator("#cc-logs-table tbody tr:not(.cc-detail-row)")).to_have_count(1)


# --- 2. which window a card shows; each figure its own threshold ---------------------------------------

def test_each_vital_card_says_which_window_it_shows(page):
    make_user("e2e-admin", superuser=True)
    seed_metrics(minutes=10)

    def label(body):
        body["vital_signs"]["latency_p95"] |= {"window_label": "last 60 s", "source": "spans"}
        body["vital_signs"]["traffic_rate"].pop("window_label", None)  # tolerated: falls back to window_seconds
        body["vital_signs"]["traffic_rate"]["window_seconds"] = 60
        body["vital_signs"]["error_rate"].pop("window_label", None)
        body["vital_signs"]["error_rate"].pop("window_seconds", None)  # and to nothing at all
    rewrite_json(page, "summary", label)
    open_command_center(page, "e2e-admin")

    window = page.locator("[data-vital=latency] .cc-card-window")
    expect(window).to_have_text("p95 · last 60 s")
    expect(window).to_have_attribute("title", "computed from spans")
    expect(page.locator("[data-vital=traffic] .cc-card-window")).to_have_text("requests · last 1 min")
    expect(page.locator("[data-vital=errors] .cc-card-window")).to_have_text("5xx rate")
    assert page.watch.errors == []


def test_the_voice_crash_rate_is_coloured_by_its_own_threshold(page):
    make_user("e2e-admin", superuser=True)
    # 0.3 % crashes is fine (voice_crash_rate_pct) although 0.3 would be a red join-success rate.
    rewrite_json(page, "voice/summary", lambda body: body.update(crash_rate_24h=0.3, join_success_rate_24h=70.0))
    open_command_center(page, "e2e-admin", "?tab=voice")

    crash = page.locator("#cc-panel-voice .cc-voice-crash")
    expect(crash).to_contain_text("0.3 %")
    expect(crash).to_have_class(re.compile(r"cc-tone-text-green"))
    expect(page.locator("#cc-panel-voice .cc-big-value").nth(2)).to_have_class(re.compile(r"cc-tone-text-red"))


# --- 3. units ---------------------------------------------------------------------------------------------

def test_values_and_ticks_are_formatted_like_grafana(page):
    make_user("e2e-admin", superuser=True)
    now = timezone.now().replace(second=0, microsecond=0)
    session_bounds = [60.0, 300.0, 900.0, 3600.0, 14400.0, 43200.0]
    rows = []
    for age in range(20):
        ts = now - timedelta(minutes=age)
        rows += [
            MetricSampleFactory.build(ts=ts, metric_name=Metric.VOICE_SESSION_DURATION_SECONDS.value, labels={},
                                      bucket_bounds=session_bounds, bucket_counts=[0, 0, 0, 0, 10, 0, 0],
                                      value_count=10, value_sum=150000.0, value_p50=15000.0,
                                      value_p95=15000.0, value_p99=15000.0),
            MetricSampleFactory.build(ts=ts, gauge=True, metric_name=Metric.PROCESS_MEMORY_BYTES.value,
                                      value_sum=400_000_000.0),
        ]
    MetricSample.objects.bulk_create(rows)
    open_command_center(page, "e2e-admin", "?range=1h")

    memory = page.locator("#cc-panel-golden figure").filter(has_text="Process memory (RSS)")
    expect(memory.locator(".u-legend")).to_contain_text("MiB")
    expect(memory.locator(".u-legend")).not_to_contain_text("400,000,000")

    page.get_by_role("tab", name="Voice").click()
    duration = page.locator("#cc-panel-voice figure").filter(has_text="Session duration")
    expect(duration.locator(".u-legend")).to_contain_text(re.compile(r"\d h"))
    expect(duration.locator(".u-legend")).not_to_contain_text(",000,000")

    formatted = page.evaluate("""async () => {
        const f = await import('/static/command_center/js/format.js');
        return [f.formatValue(15000000, 'ms'), f.formatValue(400000000, 'bytes'), f.formatValue(2.5, 'per_second'),
                f.formatValue(1500, 'ms'), f.formatValue(95, 's'), f.formatTicks([0, 3600000, 7200000, 10800000], 'ms'),
                f.formatTicks([0, 250000, 500000], 'req/s'), f.formatTicks([0, 2, 4], 'per_second')];
    }""")
    assert formatted[:5] == ["4.17 h", "381.5 MiB", "2.5 /s", "1.5 s", "1.58 min"]
    assert formatted[5] == {"label": "h", "values": ["0", "1", "2", "3"]}
    assert formatted[6] == {"label": "req/s", "values": ["0k", "250k", "500k"]}
    assert formatted[7]["label"] == "/s"


def test_card_sparklines_are_drawn_as_lines_over_sparse_minutes(page):
    make_user("e2e-admin", superuser=True)
    now = timezone.now().replace(second=0, microsecond=0)
    route = {Label.HTTP_ROUTE.value: "/api/v1/x", Label.HTTP_METHOD.value: "GET", Label.HTTP_STATUS_CODE.value: "200"}
    # A request sample every third minute: before, each one was an invisible speck between two gaps.
    MetricSample.objects.bulk_create([MetricSampleFactory.build(ts=now - timedelta(minutes=age), labels=route,
                                                                value_count=600 + age * 7, value_sum=600.0 + age * 7)
                                      for age in range(0, 60, 3)])
    cache.delete(CACHE_PREFIX + SUMMARY_CACHE_KEY)
    open_command_center(page, "e2e-admin")

    sparkline = page.locator("[data-vital=traffic] .cc-sparkline")
    expect(sparkline.locator("canvas")).to_be_visible()
    expect(sparkline).to_have_attribute("data-segments", "1")
    box = sparkline.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 150
    expect(sparkline.locator(".cc-sparkline-range")).to_contain_text("req/s")


# --- 4. the live feed groups repeats ---------------------------------------------------------------------

def test_the_feed_groups_a_burst_into_one_row_per_error_kind(page, asgi_server):
    make_user("e2e-admin", superuser=True)
    open_command_center(page, "e2e-admin")
    expect(page.locator("#cc-live-state")).to_have_text("● Live", timeout=10_000)
    def long_message(number: int) -> str:  # one kind, though every occurrence names other numbers
        return f"SFU rejected join {number} because room {1000 + number} reached its limit of 25 " * 2

    send_error_logs(asgi_server.url, [("voice.join_failed", long_message(n), trace_id()) for n in range(40)]
                    + [("chat.send_failed", "message store timed out", None) for _ in range(3)])

    items = page.locator("#cc-feed .cc-feed-item")
    expect(items).to_have_count(2, timeout=15_000)
    joins = items.filter(has_text="voice.join_failed")
    expect(joins.locator(".cc-feed-count")).to_have_attribute("data-last-minute", "40", timeout=15_000)
    chat = items.filter(has_text="chat.send_failed")
    expect(chat.locator(".cc-feed-count")).to_have_attribute("data-last-minute", "3")
    expect(joins.locator(".cc-feed-count")).to_contain_text("40 in last min")
    expect(page.locator("#cc-feed-rate")).to_have_text("43 errors/min")
    expect(joins.locator(".cc-feed-seen")).to_contain_text("first")
    expect(joins.locator(".cc-feed-spark svg rect.cc-spark-bar")).to_have_count(1)
    # A row with a trace link keeps a readable message: most of the row's width, not a few letters.
    message = joins.locator(".cc-feed-message")
    expect(joins.get_by_role("link", name=re.compile("Logs of trace"))).to_be_visible()
    assert message.bounding_box()["width"] > 0.5 * joins.bounding_box()["width"]
    # Expanding shows the full message, and no tall empty block.
    joins.locator(".cc-feed-summary").click()
    detail = joins.locator(".cc-feed-detail")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("40 × · first seen")
    assert joins.bounding_box()["height"] < 260


def test_text_a_platform_sent_is_isolated_so_right_to_left_script_cannot_reorder_the_row(page, asgi_server):
    make_user("e2e-admin", superuser=True)
    open_command_center(page, "e2e-admin")
    expect(page.locator("#cc-live-state")).to_have_text("● Live", timeout=10_000)

    send_error_logs(asgi_server.url, [("voice.join_failed", "החדר מלא: join refused", None)])

    item = page.locator("#cc-feed .cc-feed-item").filter(has_text="voice.join_failed")
    expect(item.locator(".cc-feed-message bdi")).to_have_text("החדר מלא: join refused", timeout=15_000)
    expect(item.locator(".cc-feed-event bdi")).to_have_text("voice.join_failed")
    expect(item.locator(".cc-feed-service bdi")).to_have_text("vc-server")


# --- 5. coarse data drawn honestly -------------------------------------------------------------------------

def test_the_24h_charts_join_coarse_points_and_break_only_at_real_gaps(page):
    make_user("e2e-admin", superuser=True)
    now = timezone.now().replace(second=0, microsecond=0)
    first = now.replace(minute=now.minute - now.minute % 15)
    route = {Label.HTTP_ROUTE.value: "/api/v1/guilds/{guild_id}", Label.HTTP_METHOD.value: "GET"}
    status = Label.HTTP_STATUS_CODE.value
    sample = MetricSampleFactory.build
    rows = []
    for quarter in range(24 * 4 - 1):  # like the demo seed: one sample every 15 minutes for a day…
        ts = first - timedelta(minutes=15 * quarter)
        if 8 * 4 <= quarter < 11 * 4:  # …except three hours where nothing was reported
            continue
        rows += [
            sample(ts=ts, labels={**route, status: "200"}, value_count=590, value_sum=590.0),
            sample(ts=ts, labels={**route, status: "500"}, value_count=10, value_sum=10.0),
            sample(ts=ts, histogram=True, labels={**route, status: "200"}),
            sample(ts=ts, metric_name=Metric.HTTP_ERRORS_TOTAL.value, value_count=10, value_sum=10.0,
                   labels={Label.HTTP_ROUTE.value: route[Label.HTTP_ROUTE.value], status: "500",
                           Label.ERROR_TYPE.value: "db"}),
        ]
    MetricSample.objects.bulk_create(rows)
    open_command_center(page, "e2e-admin")  # the default range: 24 h at a 120 s step

    rate = page.locator("#cc-panel-golden figure").filter(has_text="API request rate").locator(".cc-chart")
    expect(rate.locator("canvas")).to_be_visible()
    expect(rate).to_have_attribute("data-segments", "2")  # one line either side of the three missing hours
    latency = page.locator("#cc-panel-golden figure").filter(has_text="API request latency").locator(".cc-chart")
    expect(latency).to_have_attribute("data-segments", "2,2,2")
    stacked = page.locator("#cc-panel-golden figure").filter(has_text="HTTP errors (4xx vs 5xx)").locator(".cc-chart")
    expect(stacked).to_have_attribute("data-segments", "2,2")  # no comb: gaps are gaps, not drops to zero


# --- 6. drag to zoom ------------------------------------------------------------------------------------------

def test_dragging_across_a_chart_zooms_every_chart_and_moves_the_range_picker(page):
    make_user("e2e-admin", superuser=True)
    seed_metrics(minutes=60)
    open_command_center(page, "e2e-admin", "?range=6h")
    plot = page.locator("[data-chart-slot=incident] .u-over")
    expect(plot).to_be_visible()
    plot.scroll_into_view_if_needed()
    box = plot.bounding_box()
    y = box["y"] + box["height"] / 2

    with page.expect_request(re.compile(r"/trends\?.*from=.*&to=")):
        page.mouse.move(box["x"] + box["width"] * 0.5, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=8)
        page.mouse.move(box["x"] + box["width"] * 0.9, y, steps=8)
        page.mouse.up()

    expect(page).to_have_url(re.compile(r"from=[^&]+&to="))
    expect(page.locator(".cc-custom-range summary")).to_have_text(re.compile(r"^Custom: "))
    expect(page.locator(".cc-custom-range summary")).to_have_class(re.compile("cc-active"))
    for preset in ("1h", "6h", "24h"):
        expect(page.get_by_role("button", name=preset, exact=True)).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_role("tab", name="Golden Signals")).to_have_attribute("aria-selected", "true")  # no pick

    expect(plot).to_be_visible()
    plot.dblclick(position={"x": box["width"] * 0.5, "y": box["height"] / 2})
    expect(page.get_by_role("button", name="6h", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(page).not_to_have_url(re.compile(r"from="))


# --- 7. the admin's nav sidebar ---------------------------------------------------------------------------------

def test_the_nav_sidebar_starts_collapsed_here_and_remembers_the_choice(page):
    make_user("e2e-admin", superuser=True)
    open_command_center(page, "e2e-admin")
    main = page.locator("#main")
    expect(main).not_to_have_class(re.compile(r"\bshifted\b"))
    expect(page.locator("#nav-sidebar")).to_be_hidden()

    page.locator("#toggle-nav-sidebar").click()
    expect(main).to_have_class(re.compile(r"\bshifted\b"))
    page.reload()
    expect(page.locator("#cc-root")).to_be_visible()
    expect(main).to_have_class(re.compile(r"\bshifted\b"))

    page.locator("#toggle-nav-sidebar").click()
    page.goto("/admin/auth/user/")  # the rest of the admin keeps its own default (open)
    expect(page.locator("#main")).to_have_class(re.compile(r"\bshifted\b"))


# --- 8. honest states ---------------------------------------------------------------------------------------------

def test_an_invalid_trace_id_in_the_url_shows_the_api_error_in_place(page):
    make_user("e2e-admin", superuser=True)
    open_command_center(page, "e2e-admin", "?tab=traces&traces_trace_id=not-a-trace")

    error = page.locator("[data-error-for=traces]")
    expect(error).to_be_visible()
    expect(error).to_contain_text("invalid parameters")
    expect(error).to_contain_text("trace_id")
    expect(page.locator("[data-freshness=traces]")).to_contain_text("Could not load")
    expect(page.locator("[data-freshness=traces]")).not_to_have_text("Loading…")


def test_stale_has_hysteresis_and_greys_the_values(page, asgi_server):
    asgi_server.wait_until_warm()  # past the server's "Collecting data…" start, when cards have no status
    make_user("e2e-admin", superuser=True)
    seed_metrics(minutes=10)
    answers = iter([True] + [False] * 50)

    def stale(body):
        body["stale"] = body["health"]["stale"] = next(answers)
    rewrite_json(page, "summary", stale)
    open_command_center(page, "e2e-admin")
    freshness = page.locator("[data-freshness=overview]")
    overview = page.locator("#cc-vitals")
    expect(freshness).to_contain_text("(stale)")
    expect(freshness).to_contain_text("the newest data is late")  # not a bare "updated 1s ago (stale)"
    expect(overview).to_have_attribute("data-stale", "true")
    card = page.locator("[data-vital=latency]")
    grey = page.evaluate("getComputedStyle(document.querySelector('[data-vital=latency]')).borderTopColor")
    expect(card).to_have_attribute("data-status", re.compile("green|yellow|red"))
    unknown = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--cc-tone-unknown')")
    assert grey.replace(" ", "") == _rgb(unknown)

    with page.expect_response(re.compile(r"/summary")):
        page.get_by_role("button", name="6h", exact=True).click()  # one fresh answer: not enough to clear
    page.wait_for_timeout(300)
    expect(freshness).to_contain_text("(stale)")
    with page.expect_response(re.compile(r"/summary")):
        page.get_by_role("button", name="24h", exact=True).click()  # the second in a row clears it
    expect(freshness).not_to_contain_text("(stale)")
    expect(overview).to_have_attribute("data-stale", "false")


def _rgb(hex_colour: str) -> str:
    value = hex_colour.strip().lstrip("#")
    return "rgb({},{},{})".format(*(int(value[i:i + 2], 16) for i in (0, 2, 4)))


def test_empty_lists_tell_filters_from_missing_data_and_exports_state_their_cap(page):
    make_user("e2e-admin", superuser=True)
    LogEventFactory.create_batch(2, domain="auth")
    open_command_center(page, "e2e-admin", "?tab=logs&logs_domain=voice")

    empty = page.locator("[data-empty-for=logs]")
    expect(empty).to_be_visible()
    expect(empty).to_contain_text("Nothing matches these filters")
    expect(page.locator("#cc-panel-logs [data-export-cap]")).to_have_text("Exports stop at 10,000 rows")

    page.get_by_role("tab", name="Traces").click()
    expect(page.locator("[data-empty-for=traces]")).to_contain_text("No traces match. Spans sent to /v1/traces")


def test_view_site_opens_the_command_center(page):
    make_user("e2e-admin", superuser=True)
    open_command_center(page, "e2e-admin")
    expect(page.locator("#user-tools").get_by_role("link", name="View site")).to_have_attribute("href", PAGE)


def test_collecting_data_stays_while_every_card_reads_no_data(page):
    make_user("e2e-admin", superuser=True)

    def empty(body):
        body["state"] = "ok"
        for vital in body["vital_signs"].values():
            vital["value"] = None
    rewrite_json(page, "summary", empty)
    open_command_center(page, "e2e-admin")
    expect(page.locator("[data-vital=latency] .cc-status-label")).to_have_text("No data")
    expect(page.locator("#cc-collecting")).to_be_visible()


# --- 9. the incident view counts errors per bucket ---------------------------------------------------------------

def test_the_incident_view_draws_error_counts_per_bucket(page):
    make_user("e2e-admin", superuser=True)
    seed_metrics(minutes=30)
    open_command_center(page, "e2e-admin", "?range=1h")
    incident = page.locator("[data-chart-slot=incident]")
    expect(incident.locator("canvas")).to_be_visible()
    expect(incident).to_have_attribute("data-error-buckets", re.compile(r"^[1-9]\d*$"))
    # seed_metrics: 6 HTTP errors a minute over 31 minutes (the window may cut the oldest)
    total = int(incident.get_attribute("data-error-total"))
    assert 150 <= total <= 200


# --- screenshots ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [1400, 800])
def test_screenshots_of_the_triage_page(page, asgi_server, results_dir, width):
    make_user("e2e-admin", superuser=True)
    asgi_server.wait_until_warm()
    seed_metrics()
    now = timezone.now()
    for minute in range(6):
        LogEventFactory.create_batch(5 - minute % 3, event="voice.join_failed", ts=now - timedelta(minutes=minute),
                                     message="SFU rejected the join: room is full (limit 25 participants)")
    LogEventFactory.create_batch(3, event="chat.send_failed", domain="chat", trace_id=None,
                                 message="message store timed out after 2000 ms", ts=now - timedelta(minutes=2))
    gauge = partial(MetricSampleFactory.build, gauge=True)
    MetricSample.objects.bulk_create([gauge(ts=now.replace(second=0, microsecond=0) - timedelta(minutes=m),
                                            metric_name=Metric.PROCESS_MEMORY_BYTES.value, value_sum=4.1e8 + m * 1e6)
                                      for m in range(60)])
    minute = now.replace(second=0, microsecond=0)
    MetricSample.objects.bulk_create([MetricSampleFactory.build(
        ts=minute - timedelta(minutes=m), metric_name=Metric.DB_QUERY_DURATION_SECONDS.value,
        labels={Label.DB_OPERATION.value: "INSERT"}, bucket_bounds=HTTP_DURATION_BOUNDS,
        bucket_counts=[5, 9, 7, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], value_count=28, value_sum=0.3)
        for m in range(0, 60, 15)])
    page.set_viewport_size({"width": width, "height": 1000})
    open_command_center(page, "e2e-admin", "?range=1h")
    expect(page.locator("[data-vital=latency] .cc-value")).to_have_text(re.compile(r"\d"))
    expect(page.locator("#cc-feed .cc-feed-item")).to_have_count(2)
    expect(page.locator("#cc-panel-golden .uplot").first).to_be_visible()
    page.wait_for_timeout(500)
    page.screenshot(path=results_dir / f"triage-{width}-overview.png")
    page.screenshot(path=results_dir / f"triage-{width}-full.png", full_page=True)
    page.locator("#cc-feed .cc-feed-item").first.locator(".cc-feed-summary").click()
    page.locator("#cc-feed").screenshot(path=results_dir / f"triage-{width}-feed-expanded.png")
    overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0, f"horizontal scroll of {overflow}px at {width}px"
    assert page.watch.errors == []
