"""Which service instances report, with the version and environment their OTLP resources name.

One row per (service, `service.instance.id`) in `telemetry_service_instances`. Only what a resource carries
is recorded: a missing version or environment stays NULL, a missing instance id is "". The values come from
outside, so they are cut to VALUE_MAX_LENGTH characters and scrubbed like any free text.

`first_seen` is the start of the instance's current run of reports: a row not seen for RESTART_GAP starts
a new run (a restarted process with the same instance id). `version_first_seen` moves when the version
changes; the earliest one among the live instances running the current version is the "last deploy".

The receiver calls `record_resources` once per export request. Each web process remembers what it wrote in
the last REWRITE_AFTER and skips resources it has already recorded (a collector sends the same resource with
every request), so the upsert costs a dictionary lookup on almost every request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from telemetry.contract import Attr
from telemetry.ingest.resources import service_name
from telemetry.ingest.text import scrubbed, storable
from telemetry.otlp import any_value_to_python

VALUE_MAX_LENGTH = 128
REWRITE_AFTER = timedelta(seconds=30)
RESTART_GAP = timedelta(minutes=5)
_REMEMBERED_MAX = 10_000
_SCALAR_TYPES = (str, int, float)


@dataclass(frozen=True)
class InstanceReport:
    service: str
    instance_id: str  # "" when not reported
    version: str | None
    environment: str | None


def report_of(resource: Resource) -> InstanceReport:
    """What `resource` says about its instance (capped, scrubbed; None/"" where it says nothing)."""
    values: dict[str, str] = {}
    wanted = (Attr.SERVICE_VERSION, Attr.DEPLOYMENT_ENVIRONMENT_NAME, Attr.DEPLOYMENT_ENVIRONMENT,
              Attr.SERVICE_INSTANCE_ID)
    for attribute in resource.attributes:
        if attribute.key in wanted:
            value = _text(any_value_to_python(attribute.value))
            if value is not None:
                values[attribute.key] = value
    return InstanceReport(
        service=storable(service_name(resource)),
        instance_id=values.get(Attr.SERVICE_INSTANCE_ID, ""),
        version=values.get(Attr.SERVICE_VERSION),
        environment=values.get(Attr.DEPLOYMENT_ENVIRONMENT_NAME) or values.get(Attr.DEPLOYMENT_ENVIRONMENT),
    )


def record_resources(resources: Iterable[Resource], seen_at: datetime, using: str = "default") -> int:
    """Record that the instances of `resources` reported at `seen_at`; returns the rows written (reports
    this process recorded less than REWRITE_AFTER before are skipped)."""
    written = 0
    # In key order, so that two requests upserting the same rows cannot deadlock.
    reports = sorted({report_of(resource) for resource in resources},
                     key=lambda report: (report.service, report.instance_id, report.version or "",
                                         report.environment or ""))
    for report in reports:
        if not _recently_written.written_shortly_before(report, seen_at):
            _upsert(report, seen_at, using)
            _recently_written.remember(report, seen_at)
            written += 1
    return written


def forget_written() -> None:
    """Forget what this process wrote (tests)."""
    _recently_written.clear()


def _text(value: object) -> str | None:
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif not isinstance(value, _SCALAR_TYPES):  # arrays, maps and bytes name no version or environment
        return None
    # The slack before scrubbing keeps a secret that straddles the cut recognisable to the scrubber.
    text = scrubbed(storable(str(value)).strip()[: 4 * VALUE_MAX_LENGTH])[:VALUE_MAX_LENGTH].strip()
    return text or None


class _RecentlyWritten:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written_at: dict[InstanceReport, datetime] = {}

    def written_shortly_before(self, report: InstanceReport, seen_at: datetime) -> bool:
        written_at = self._written_at.get(report)
        return written_at is not None and timedelta(0) <= seen_at - written_at < REWRITE_AFTER

    def remember(self, report: InstanceReport, seen_at: datetime) -> None:
        with self._lock:
            if len(self._written_at) >= _REMEMBERED_MAX:
                self._written_at.clear()
            self._written_at[report] = seen_at

    def clear(self) -> None:
        with self._lock:
            self._written_at.clear()


_recently_written = _RecentlyWritten()

# A report older than the stored last_seen (another process, a late request) must not move the version back.
_UPSERT = """
INSERT INTO telemetry_service_instances AS stored
    (service, instance_id, version, environment, first_seen, last_seen, version_first_seen)
VALUES (%(service)s, %(instance_id)s, %(version)s, %(environment)s, %(seen)s, %(seen)s,
        CASE WHEN %(version)s::text IS NULL THEN NULL ELSE %(seen)s::timestamptz END)
ON CONFLICT (service, instance_id) DO UPDATE SET
    first_seen = CASE WHEN EXCLUDED.last_seen - stored.last_seen > %(restart_gap)s THEN EXCLUDED.first_seen
                      ELSE least(stored.first_seen, EXCLUDED.first_seen) END,
    last_seen = greatest(stored.last_seen, EXCLUDED.last_seen),
    version = CASE WHEN EXCLUDED.last_seen >= stored.last_seen THEN EXCLUDED.version ELSE stored.version END,
    environment = CASE WHEN EXCLUDED.last_seen >= stored.last_seen THEN EXCLUDED.environment
                       ELSE stored.environment END,
    version_first_seen = CASE
        WHEN EXCLUDED.last_seen < stored.last_seen THEN stored.version_first_seen
        WHEN EXCLUDED.version IS NULL THEN NULL
        WHEN EXCLUDED.version IS NOT DISTINCT FROM stored.version
             AND EXCLUDED.last_seen - stored.last_seen <= %(restart_gap)s
            THEN least(stored.version_first_seen, EXCLUDED.version_first_seen)
        ELSE EXCLUDED.version_first_seen END
"""


def _upsert(report: InstanceReport, seen_at: datetime, using: str) -> None:
    with connections[using].cursor() as cursor:
        cursor.execute(_UPSERT, {
            "service": report.service,
            "instance_id": report.instance_id,
            "version": report.version,
            "environment": report.environment,
            "seen": seen_at,
            "restart_gap": RESTART_GAP,
        })
