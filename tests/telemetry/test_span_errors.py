"""One definition of "this span is an error" (telemetry/span_errors.py): ingest's decision, the stored row, the
SQL function readers filter on and the Python twin all agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from telemetry import span_errors
from telemetry.ingest.outcome import IngestOutcome, TimeWindow
from telemetry.ingest.traces import KeptReason, TraceSelection, trace_rows
from telemetry.otlp import OtlpSignal
from telemetry.queries import records
from telemetry.storage import TRACE_COLUMNS, insert_trace_rows
from tests.telemetry.ingest.otlp_builders import ns, span, traces_request

NOW = datetime.now(UTC).replace(microsecond=0)
STATUSES = (None, "OK", "ERROR", "200", "404", "499", "500", "503", "599", "5xx", "50", "5000", "error")
REASONS = (None, "e", "s", "p")


@pytest.mark.parametrize(("failed", "status", "expected"), [
    (False, None, False), (True, None, True), (False, "404", False), (True, "404", True),
    (False, "500", True), (False, "599", True), (False, "499", False), (True, "200", True),
])
def test_ingest_calls_a_span_an_error_when_it_failed_or_answered_5xx(failed, status, expected):
    assert span_errors.is_error(failed, status) is expected
    # What ingest stores says so too: the status itself, or the reason it was kept.
    reason = KeptReason.ERROR.value if expected else None
    assert span_errors.stored_is_error(span_errors.stored_status(failed, status), reason) is expected


@pytest.mark.django_db
def test_the_sql_function_and_the_python_twin_agree_on_every_stored_combination():
    cases = [(status, reason) for status in STATUSES for reason in REASONS]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {span_errors.SQL_FUNCTION}(status_code, kept_reason::\"char\")"
            " FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS u(status_code, kept_reason, i) ORDER BY i",
            [[status for status, _ in cases], [reason for _, reason in cases]],
        )
        in_sql = [row[0] for row in cursor.fetchall()]

    assert in_sql == [span_errors.stored_is_error(status, reason) for status, reason in cases]
    erroneous = ("ERROR", "500", "503", "599")  # whatever the reason; every other status only when kept as 'e'
    assert sum(in_sql) == len(REASONS) * len(erroneous) + len(STATUSES) - len(erroneous)


@pytest.mark.django_db
def test_a_failed_span_that_answered_404_is_an_error_in_the_trace_list_as_in_the_live_windows():
    selection = TraceSelection(slow_ns=10**12, db_slow_ns=10**12, sample_rate=0.0)
    request = traces_request(
        span(b"\xff" * 16, b"\x01" * 8, ns(NOW), 5, error=True, attributes={"http.response.status_code": 404}),
        span(b"\xff" * 16, b"\x02" * 8, ns(NOW), 5, attributes={"http.response.status_code": 502}),
    )
    rows = [dict(zip(TRACE_COLUMNS, row, strict=True))
            for row in trace_rows(request, IngestOutcome(OtlpSignal.TRACES), TimeWindow.around(NOW), selection)]
    insert_trace_rows(rows)

    found = records.spans(NOW - timedelta(minutes=1), NOW + timedelta(minutes=1), status="error",
                          slow=records.SlowThresholds(100, 1000))
    assert sorted(row.status_code for row in found) == ["404", "502"]
    page, _ = records.page(found, NOW - timedelta(minutes=1), NOW + timedelta(minutes=1), None, 10)
    assert [record.failed for record in page] == [True, True]
