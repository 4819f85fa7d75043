"""Normal vs now and the worst voice sessions (issue 16, parts 1 and 4) in the browser: real daphne, Debian's
Chromium. Each test fails without the behaviour it names."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from command_center.selectors import baselines
from telemetry.contract import Label
from telemetry.rollups import refresh_rollups
from tests.command_center.selectors.test_baselines import seed_week
from tests.e2e.test_command_center_page import make_user, open_command_center, seed_metrics
from tests.factories import ConnectionMetricFactory, ConnectionSessionFactory, MetricSampleFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("empty_telemetry_tables")]


def hour_with_time_left(margin: timedelta = timedelta(seconds=90)):
    """The current UTC hour, once at least `margin` of it is left (waiting for the next one otherwise): the
    server judges the cards against the hour of its own clock, which a test cannot freeze."""
    now = timezone.now()
    left = baselines.hour_of(now) + timedelta(hours=1) - now
    if left < margin:
        time.sleep(left.total_seconds() + 1)
    return baselines.hour_of(timezone.now())


def test_vital_cards_show_yesterday_last_week_and_say_when_a_value_is_unusual(page, asgi_server, results_dir):
    make_user("e2e-admin", superuser=True)
    asgi_server.wait_until_warm()
    # The same hour on the 7 previous days: d req/s and d % errors on day d, pool at 10·d %.
    seed_week(hour_with_time_left())
    refresh_rollups()
    seed_metrics(minutes=10)  # now: 10 req/s (outside 1..7), 1 % 5xx and a pool at 35 % (inside their ranges)
    page.set_viewport_size({"width": 1400, "height": 900})
    open_command_center(page, "e2e-admin")

    traffic = page.locator("[data-vital=traffic]")
    line = traffic.locator(".cc-card-baseline")
    expect(line).to_contain_text("yesterday 1 req/s")
    expect(line).to_contain_text("last week 7 req/s")
    expect(line).to_contain_text("(+900 %)")  # 10 against yesterday's 1
    expect(traffic).to_have_attribute("data-unusual", "above")
    expect(traffic.locator(".cc-unusual")).to_be_visible()
    # Said in words for screen readers, with the range and the hour it was judged against.
    expect(traffic.locator(".cc-unusual .visually-hidden")).to_have_text(re.compile(
        r"Unusual: above the normal range of 1 req/s–7 req/s for \d\d:00–\d\d:00 UTC, "
        r"same hour on the previous 7 days"))
    errors = page.locator("[data-vital=errors]")
    expect(errors.locator(".cc-card-baseline")).to_contain_text("yesterday 1 %")
    expect(errors).to_have_attribute("data-unusual", "")
    expect(errors.locator(".cc-card-baseline .visually-hidden")).to_contain_text("Within the normal range")
    expect(page.locator("[data-vital=saturation]")).to_have_attribute("data-unusual", "")
    expect(page.locator("[data-vital=saturation] .cc-card-baseline")).to_contain_text("last week 70 %")
    page.locator("#cc-vitals").screenshot(path=results_dir / "baselines-cards-1400.png")
    assert page.watch.errors == []


def requests_minute(ts, count: int) -> None:
    labels = {Label.HTTP_ROUTE: "/api/v1/guilds/{guild_id}", Label.HTTP_METHOD: "GET",
              Label.HTTP_STATUS_CODE: "200"}
    MetricSampleFactory(ts=ts, labels=labels, value_count=count, value_sum=float(count))
    MetricSampleFactory(histogram=True, ts=ts, labels=labels)


def test_the_compare_toggle_draws_yesterday_as_a_dashed_overlay(page, asgi_server, results_dir):
    make_user("e2e-admin", superuser=True)
    asgi_server.wait_until_warm()
    seed_metrics(minutes=60)
    now = timezone.now().replace(second=0, microsecond=0)
    for age in range(0, 61, 2):
        requests_minute(now - timedelta(days=1, minutes=age), 300 + 10 * age)  # yesterday's traffic, a slope
    open_command_center(page, "e2e-admin", "?range=1h&signal=traffic")
    incident = page.locator("[data-chart-slot=incident]")
    expect(incident.locator(".uplot")).to_be_visible()
    expect(incident).not_to_have_attribute("data-compare", re.compile("."))

    with page.expect_request(re.compile(r"/trends\?.*compare=yesterday")):
        page.locator("#cc-compare").select_option("yesterday")
    expect(page).to_have_url(re.compile("compare=yesterday"))
    expect(incident).to_have_attribute("data-compare", "requests (yesterday)")
    expect(incident.locator(".u-legend")).to_contain_text("requests (yesterday)")
    traffic_chart = page.locator("figure.cc-chart-card", has_text="API request rate").locator(".cc-chart")
    expect(traffic_chart).to_have_attribute("data-compare", "requests (yesterday)")
    expect(incident.locator(".u-legend .u-series").nth(3)).to_be_visible()  # time, requests, error rate, overlay
    incident.scroll_into_view_if_needed()
    page.locator(".cc-incident").screenshot(path=results_dir / "baselines-compare-yesterday-1400.png")

    page.locator("#cc-compare").select_option("last_week")
    expect(incident).to_have_attribute("data-compare", "requests (last week)")
    page.locator("#cc-compare").select_option("")
    expect(incident).not_to_have_attribute("data-compare", re.compile("."))
    expect(page).not_to_have_url(re.compile("compare="))
    assert page.watch.errors == []


A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


def test_the_voice_tab_lists_the_worst_sessions_with_their_quality_over_time(page, asgi_server, results_dir):
    make_user("e2e-admin", superuser=True)
    now = timezone.now().replace(second=0, microsecond=0)
    ConnectionSessionFactory(id=A, started_at=now - timedelta(minutes=25), ended_at=now - timedelta(minutes=5),
                             outcome="crash")
    ConnectionSessionFactory(id=B, started_at=now - timedelta(minutes=40), ended_at=None, outcome=None)
    for minute in range(20):
        ts = now - timedelta(minutes=minute)
        ConnectionMetricFactory(ts=ts, session_id=A, packet_loss=2.0 + minute % 7, jitter_ms=20, latency_ms=60,
                                quality=0 if minute % 7 == 6 else 2)
        ConnectionMetricFactory(ts=ts, session_id=B, packet_loss=0.5, jitter_ms=80, latency_ms=400, quality=3)
        ConnectionMetricFactory(ts=ts, session_id=C, packet_loss=0.1, jitter_ms=5, latency_ms=30, quality=3)
    open_command_center(page, "e2e-admin", "?tab=voice&range=1h")

    page.get_by_role("link", name="Worst sessions of this range →").click()
    worst = page.locator("#cc-voice-worst")
    expect(worst).to_be_focused()
    rows = worst.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_have_attribute("data-session", str(A))  # the highest loss p95 first
    expect(rows.nth(0)).to_contain_text("crash")
    expect(rows.nth(0)).to_contain_text("20 min 0 s")
    expect(rows.nth(0).locator("svg.cc-session-spark")).to_have_attribute("data-points", "20")
    expect(rows.nth(0).locator("svg.cc-session-spark circle")).to_have_count(2)  # minutes 6 and 13: poor
    expect(rows.nth(1)).to_contain_text("ongoing")
    expect(rows.nth(0).locator("code")).to_have_text(str(A))  # only the random session id identifies it
    worst.scroll_into_view_if_needed()
    worst.screenshot(path=results_dir / "baselines-worst-sessions-1400.png")

    with page.expect_request(re.compile(r"/voice/worst-sessions\?.*sort=latency")):
        page.locator("#cc-worst-sort").select_option("latency")
    expect(rows.nth(0)).to_have_attribute("data-session", str(B))
    expect(worst.locator("thead")).to_contain_text("Latency over time (ms)")
    assert page.watch.errors == []
