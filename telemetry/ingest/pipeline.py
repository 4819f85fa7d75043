"""One decoded export request → stored rows, in one transaction (the receiver and seed_demo call this)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import DatabaseError, transaction
from django.utils import timezone
from google.protobuf.message import Message

from telemetry import live_windows, service_instances
from telemetry.ingest import logs, metrics, traces
from telemetry.ingest.outcome import IngestOutcome, TimeWindow
from telemetry.otlp import OtlpSignal
from telemetry.signals import live_windows_updated

logger = logging.getLogger(__name__)
_RESOURCE_LISTS = {
    OtlpSignal.METRICS: "resource_metrics", OtlpSignal.LOGS: "resource_logs", OtlpSignal.TRACES: "resource_spans",
}


def ingest(
    signal: OtlpSignal, request: Message, now: datetime | None = None, using: str = "default"
) -> IngestOutcome:
    """Convert `request` under the contract and store what it keeps; all or nothing.

    Storage errors (django.db OperationalError/InterfaceError) propagate with nothing stored.
    """
    now = now or timezone.now()
    window = TimeWindow.around(now)
    outcome = IngestOutcome(signal)
    if signal is OtlpSignal.METRICS:
        points = metrics.metric_points(request, outcome, window, metrics.enabled_flags())
        with transaction.atomic(using=using):
            metrics.store_metric_points(points, outcome, window, using)
    elif signal is OtlpSignal.LOGS:
        with transaction.atomic(using=using):
            logs.store_logs(request, outcome, window, using)
    else:
        live = live_windows.LiveCounts()
        trace_rows = traces.trace_rows(request, outcome, window, traces.TraceSelection.from_settings(), live)
        with transaction.atomic(using=using):
            traces.store_trace_rows(trace_rows, outcome, using)
        # After the commit: a request that failed to store answers 503 and is re-sent, so counting it
        # earlier would count its requests twice.
        if live.spans and live_windows.record(live) and live.routes:
            live_windows_updated.send(sender=ingest, received_at=live.received_at)
    _record_instances(signal, request, now, using)
    return outcome


def _record_instances(signal: OtlpSignal, request: Message, now: datetime, using: str) -> None:
    """Server metadata of the resources (after the data is stored: the data never waits for it)."""
    resources = [entry.resource for entry in getattr(request, _RESOURCE_LISTS[signal])]
    try:
        with transaction.atomic(using=using):
            service_instances.record_resources(resources, now, using)
    except DatabaseError as error:  # the request's data is committed; only the metadata is late
        logger.warning("service instance metadata not recorded: %s", error)
