"""One decoded export request → stored rows, in one transaction (the receiver and seed_demo call this)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from google.protobuf.message import Message

from telemetry.ingest import logs, metrics, traces
from telemetry.ingest.outcome import IngestOutcome, TimeWindow
from telemetry.otlp import Signal


def ingest(
    signal: Signal, request: Message, now: datetime | None = None, using: str = "default"
) -> IngestOutcome:
    """Convert `request` under the contract and store what it keeps; all or nothing.

    Storage errors (django.db OperationalError/InterfaceError) propagate with nothing stored.
    """
    window = TimeWindow.around(now or timezone.now())
    outcome = IngestOutcome(signal)
    if signal is Signal.METRICS:
        points = metrics.metric_points(request, outcome, window, metrics.enabled_flags())
        with transaction.atomic(using=using):
            metrics.store_metric_points(points, outcome, window, using)
    elif signal is Signal.LOGS:
        rows = logs.log_rows(request, outcome, window)
        with transaction.atomic(using=using):
            logs.store_log_rows(rows, outcome, using)
    else:
        trace_rows = traces.trace_rows(request, outcome, window, traces.TraceSelection.from_settings())
        with transaction.atomic(using=using):
            traces.store_trace_rows(trace_rows, outcome, using)
    return outcome
