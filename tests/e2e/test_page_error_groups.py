"""Error groups on the page (issue 16.2), on real daphne and Chromium: errors sent over OTLP are grouped by the
server's fingerprint in the overview, the live feed and the Errors tab, and a group leads to its logs."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from playwright.sync_api import expect

from telemetry.error_groups import GROUPS_TABLE, MINUTES_TABLE
from telemetry.fingerprints import Fingerprint, Source
from tests.e2e.test_command_center_page import make_user, open_command_center, select_tab
from tests.e2e.test_page_triage import send_error_logs

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("empty_telemetry_tables", "empty_error_groups")]

POOL = Fingerprint.of(Source.LOG, "vc-server", "db.pool", "pool exhausted (<n> waiting)")
CHAT = Fingerprint.of(Source.LOG, "vc-server", "chat.send_failed", "message store timed out")


@pytest.fixture
def empty_error_groups():
    def truncate():
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {GROUPS_TABLE}, {MINUTES_TABLE}")

    truncate()
    yield
    truncate()


def test_errors_are_grouped_by_the_servers_fingerprint_everywhere_and_a_group_opens_its_logs(page, asgi_server):
    make_user("e2e-admin", superuser=True)
    send_error_logs(asgi_server.url, [("db.pool", f"pool exhausted ({n * 37} waiting)", None) for n in range(1, 6)]
                    + [("chat.send_failed", "message store timed out", "ab" * 16) for _ in range(2)])
    open_command_center(page, "e2e-admin")

    # Overview: the top groups of 24 h, both new (first seen now), the larger first.
    top = page.locator("#cc-top-groups .cc-top-group")
    expect(top).to_have_count(2, timeout=15_000)
    expect(top.first).to_have_attribute("data-group", POOL.as_hex)
    expect(top.first).to_contain_text("5 ×")
    expect(top.first.get_by_text("New", exact=True)).to_be_visible()
    expect(top.nth(1)).to_contain_text("Logs · trace abababab")  # two links, not one word "Logstrace"
    # The live feed keys its rows by the same group, not by a template of its own.
    feed = page.locator("#cc-feed .cc-feed-item")
    expect(feed).to_have_count(2)
    expect(page.locator(f'#cc-feed .cc-feed-item[data-key="{POOL.as_hex}"]')).to_have_count(1)

    select_tab(page, "Errors")
    rows = page.locator("#cc-errors-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator(".cc-group-template")).to_have_text("pool exhausted (<n> waiting)")
    expect(rows.first.locator(".cc-group-count")).to_have_text("5")
    page.locator("#cc-error-filters input[name=search]").fill("store timed")
    page.locator("#cc-error-filters").get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"errors_search=store\+timed"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-group", CHAT.as_hex)

    page.get_by_role("button", name="Clear").first.click()
    expect(rows).to_have_count(2)
    rows.first.get_by_role("link", name="Logs").click()
    expect(page).to_have_url(re.compile(f"logs_group={POOL.as_hex}"))
    expect(page.locator("#cc-logs-table tbody tr:not(.cc-detail-row)")).to_have_count(5)


def test_a_refused_filter_is_said_in_place_and_an_empty_window_in_words(page):
    make_user("e2e-admin", superuser=True)
    open_command_center(page, "e2e-admin", "?tab=errors&errors_service=" + "x" * 200)
    note = page.locator("[data-error-for=errors]")
    expect(note).to_be_visible(timeout=15_000)
    expect(note).to_contain_text("service")
    page.locator("#cc-error-filters").get_by_role("button", name="Clear").click()
    expect(page.locator("[data-empty-for=errors]")).to_have_text(
        "No errors in this time range. ERROR logs and failed spans are grouped here as they arrive.")
    expect(page.locator("#cc-top-groups-note")).to_have_text("No errors in the last 24 hours.")
