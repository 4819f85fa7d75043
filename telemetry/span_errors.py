"""Is this span an error: the one definition, for ingest, storage and every reader.

Contract section 5: a span is an error when its status is ERROR or its `http.response.status_code` is >= 500
(normalised to a 3-digit string, so a 5xx). Ingest decides it from the OTLP span (`is_error`) and records the
answer in the row: an error is kept for that reason first (`kept_reason` 'e'). The stored `status_code` is the
HTTP status when there is one, else OK/ERROR, so a failed span that answered, say, 404 says "404": readers of
stored rows therefore ask `stored_is_error`, which also trusts the status for rows stored without a reason
(written before migration 0005, or by tests and seeds). SQL over stored rows calls the twin function
`telemetry_span_is_error(status_code, kept_reason)` of migration 0012 (`telemetry.queries.records.ERROR_CONDITION`
wraps it); tests/telemetry/test_span_errors.py checks that both agree.
"""

from __future__ import annotations

STATUS_OK = "OK"
STATUS_ERROR = "ERROR"
KEPT_AS_ERROR = "e"  # telemetry.ingest.traces.KeptReason.ERROR, the rule checked first
SQL_FUNCTION = "telemetry_span_is_error"


def is_server_error_status(status_code: str | None) -> bool:
    """An HTTP status (as stored: a 3-digit string) in the 5xx range."""
    return (status_code is not None and len(status_code) == 3 and status_code.startswith("5")
            and status_code.isdigit())


def is_error(failed: bool, status_code: str | None) -> bool:
    """A span as ingest sees it: `failed` (OTLP status ERROR) and its normalised HTTP status, if any."""
    return failed or is_server_error_status(status_code)


def stored_status(failed: bool, status_code: str | None) -> str:
    """The `status_code` column: the HTTP status, else ERROR or OK."""
    return status_code or (STATUS_ERROR if failed else STATUS_OK)


def stored_is_error(status_code: str | None, kept_reason: str | None = None) -> bool:
    """A stored span: kept because it was an error, or its stored status says so."""
    return kept_reason == KEPT_AS_ERROR or status_code == STATUS_ERROR or is_server_error_status(status_code)
