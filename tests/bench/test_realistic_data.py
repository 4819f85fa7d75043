"""bench.realistic_data: the benches' logs and spans are varied, scrubbed and stored as the receiver stores them."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bench import realistic_data
from telemetry import partitions
from telemetry.contract import LOG_ATTR_ALLOWLIST, LOG_DOMAINS, is_forbidden, normalize_route
from telemetry.ingest.traces import KeptReason
from telemetry.models import LogEvent, StoredTraceEntry, TraceIndexEntry
from telemetry.queries.records import is_error_status
from tests.conftest import truncate_telemetry_tables

pytestmark = pytest.mark.django_db

# Yesterday's busiest hours of the diurnal curve, at a tenth of `heavy`: a few thousand rows.
START = (datetime.now(UTC) - timedelta(days=1)).replace(hour=16, minute=0, second=0, microsecond=0)
END = START + timedelta(hours=2)
# The simulator's e-mails, IPv4 and IPv6 addresses and bearer tokens.
PERSONAL_DATA = re.compile(r"@example\.fi|203\.0\.113\.|2001:db8:|Bearer (?!\[redacted\])")


@pytest.fixture(scope="module")
def filled(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        partitions.ensure_partitions(now=END)
        stored = realistic_data.fill(START, END, "heavy", scale=0.1)
        yield stored
        truncate_telemetry_tables()  # committed outside any test's transaction: groups and span counts too


def test_logs_are_varied_scrubbed_and_carry_only_allowlisted_attributes(filled):
    logs = list(LogEvent.objects.all())
    assert filled.log_records == len(logs) > 1000
    assert min(log.ts for log in logs) >= START and max(log.ts for log in logs) < END
    assert len({log.event for log in logs}) >= 12  # of the simulator's 16 baseline templates
    assert len({log.service for log in logs}) >= 5
    assert {log.level for log in logs} == {"WARN", "ERROR"}
    assert {log.domain for log in logs} <= set(LOG_DOMAINS)
    # Many distinct messages, not a template plus a counter; placeholders where personal data was.
    assert len({log.message for log in logs}) > len(logs) / 4
    messages = " ".join(log.message for log in logs)
    assert "[email]" in messages and "[ip]" in messages and "Bearer [redacted]" in messages
    assert PERSONAL_DATA.search(messages) is None
    keys = {key for log in logs for key in log.attrs}
    assert keys <= LOG_ATTR_ALLOWLIST and not any(is_forbidden(key) for key in keys)
    # ERROR records of failed requests share the request's trace.
    span_traces = set(TraceIndexEntry.objects.values_list("trace_id", flat=True))
    assert any(log.trace_id in span_traces for log in logs if log.level == "ERROR")


def test_spans_have_routes_trace_shapes_and_an_error_mix(filled):
    spans = list(StoredTraceEntry.objects.all())
    assert filled.spans == len(spans) > 1000
    routes = {span.route for span in spans if span.route}
    assert len(routes) >= 30 and all(normalize_route(route) == route for route in routes)
    assert len({span.service for span in spans}) >= 5
    assert {span.domain for span in spans} >= {"db", "chat", "voice", "auth"}
    per_trace = Counter(span.trace_id for span in spans)
    assert max(per_trace.values()) >= 3 and min(per_trace.values()) == 1  # entry span + db spans, and alone
    # Every span of a trace is stored under one service.
    services = {}
    for span in spans:
        assert services.setdefault(span.trace_id, span.service) == span.service
    reasons = Counter(span.kept_reason for span in spans)
    assert set(reasons) == {KeptReason.ERROR, KeptReason.SLOW, KeptReason.SAMPLED}
    errors = sum(1 for span in spans if is_error_status(span.status_code))
    assert 0.01 < errors / len(spans) < 0.5
