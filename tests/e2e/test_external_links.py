"""With a Tempo trace URL configured, each trace row links out to it (new tab, no opener), with its own id."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import AsgiServer, serve_asgi
from tests.e2e.test_command_center_page import make_user, open_command_center, select_tab
from tests.factories import TraceIndexEntryFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("empty_telemetry_tables")]

TEMPO_TRACE_URL = "https://tempo.example.test/explore?trace={trace_id}&orgId=1"


@pytest.fixture(scope="module")
def asgi_server(django_db_setup, chromium_executable) -> Iterator[AsgiServer]:
    yield from serve_asgi(COMMAND_CENTER_TEMPO_URL="https://tempo.example.test",
                          COMMAND_CENTER_TEMPO_TRACE_URL=TEMPO_TRACE_URL)


def test_each_trace_row_opens_its_own_trace_in_tempo(page):
    make_user("e2e-admin", superuser=True)
    first, second = TraceIndexEntryFactory(route="/api/v1/voice/join"), TraceIndexEntryFactory(route="/api/v1/me")
    open_command_center(page, "e2e-admin")
    select_tab(page, "Traces")

    for entry in (first, second):
        row = page.locator("#cc-traces-table tbody tr", has_text=entry.route)
        link = row.get_by_role("link", name="Open in Tempo")
        expect(link).to_have_attribute("href", TEMPO_TRACE_URL.format(trace_id=quote(entry.trace_id)))
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
