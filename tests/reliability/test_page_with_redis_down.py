"""The Command Center page in a real browser while Redis (Valkey) is stopped: Valkey shows `down` in the service
matrix and the degraded banner says live updates are offline; after the restart the socket comes back."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import browser, chromium_executable  # noqa: F401 - the browser fixtures
from tests.reliability.test_faults import admin_session

pytestmark = pytest.mark.e2e

PAGE = "/admin/command-center/"


def test_with_redis_stopped_the_page_shows_valkey_down_and_the_degraded_banner(stack, browser):  # noqa: F811
    session = admin_session(stack)
    context = browser.new_context(base_url=stack.base_url, viewport={"width": 1400, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": session.cookies["sessionid"], "url": stack.base_url}])
    page = context.new_page()
    try:
        page.goto(PAGE)
        expect(page.locator("#cc-live-state")).to_have_text("● Live", timeout=30_000)
        banner = page.locator("#cc-banner")
        expect(banner).to_be_hidden()

        stack.redis.stop()
        stack.python("from command_center.probes import run_probes; run_probes()")  # the 10 s probe task

        valkey = page.locator('#cc-matrix tr[data-service="redis"] .cc-service-status')
        expect(valkey).to_have_text("down", timeout=40_000)  # the matrix refreshes every 10 s
        expect(banner).to_be_visible(timeout=40_000)
        expect(banner).to_contain_text("Live updates are offline")

        stack.redis.start()
        page.locator(".cc-banner-retry").click()
        expect(banner).to_be_hidden(timeout=40_000)
    finally:
        context.close()
