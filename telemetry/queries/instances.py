"""Platform service instances as their OTLP resources report them (`telemetry.service_instances` keeps them)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from django.db.models import Min

from kaiku_ops.db_routers import read_alias
from telemetry.models import ServiceInstance


@dataclass(frozen=True)
class Instance:
    """One instance: `instance_id` is "" when the resource names no `service.instance.id`; `version` and
    `environment` are None when not reported. `first_seen` starts the instance's current run of reports,
    `version_first_seen` is when it was first seen with its current version."""

    service: str
    instance_id: str
    version: str | None
    environment: str | None
    first_seen: datetime
    last_seen: datetime
    version_first_seen: datetime | None


_FIELDS = tuple(field.name for field in fields(Instance))


def reported_since(since: datetime) -> list[Instance]:
    """The instances whose latest report is at `since` or later."""
    rows = ServiceInstance.objects.using(read_alias()).filter(last_seen__gte=since).values_list(*_FIELDS)
    return [Instance(*row) for row in rows]


@dataclass(frozen=True)
class Deploy:
    """A version of a service first seen at `at` (on the earliest of its instances that still runs it)."""

    service: str
    version: str
    at: datetime


def deploys_between(start: datetime, end: datetime) -> list[Deploy]:
    """The versions first seen with start <= at < end, oldest first. Each instance remembers only the version it
    runs now, so a version already replaced on every instance is no longer listed."""
    rows = (
        ServiceInstance.objects.using(read_alias())
        .filter(version__isnull=False, version_first_seen__gte=start, version_first_seen__lt=end)
        .values_list("service", "version")
        .annotate(at=Min("version_first_seen"))
        .order_by("at", "service", "version")
    )
    return [Deploy(*row) for row in rows]
