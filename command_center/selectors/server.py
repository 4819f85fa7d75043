"""Server metadata of the platform's main service: only what its OTLP resources report, else absent.

Source: `telemetry.queries.instances`, one entry per service instance. An instance is live when it reported
within LIVE_WINDOW. The main service is `settings.COMMAND_CENTER_MAIN_SERVICE` when set, else the live service
with the most live instances (ties: the most recently seen, then the name).

- `version`: the version the most recently deployed live instance runs (newest `version_first_seen`);
- `last_deploy_at`: when that version was first seen on any live instance running it;
- `environment`: the environment the most recently seen live instance names;
- `started_at`, `uptime_seconds`: when the longest-running live instance began its current run of reports, and
  how long ago that is;
- `instances`: live instances that name a `service.instance.id` (absent when none does).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from telemetry.queries.instances import Instance, reported_since

LIVE_WINDOW = timedelta(minutes=5)


def server_metadata(now: datetime) -> dict[str, Any]:
    """{service, version, environment, started_at, uptime_seconds, last_deploy_at, instances}; keys absent when
    unknown."""
    live = reported_since(now - LIVE_WINDOW)
    service = _main_service(live)
    instances = [instance for instance in live if instance.service == service]
    if not instances:
        return {}
    metadata: dict[str, Any] = {"service": service}
    deploy = latest_deploy(instances)
    if deploy is not None:
        metadata["version"], deployed = deploy
        metadata["last_deploy_at"] = _iso(deployed)
    with_environment = [instance for instance in instances if instance.environment is not None]
    if with_environment:
        metadata["environment"] = max(with_environment, key=lambda instance: instance.last_seen).environment
    started = min(instance.first_seen for instance in instances)
    metadata["started_at"] = _iso(started)
    metadata["uptime_seconds"] = max(0, int((now - started).total_seconds()))
    identified = sum(1 for instance in instances if instance.instance_id)
    if identified:
        metadata["instances"] = identified
    return metadata


def latest_deploy(instances: Iterable[Instance]) -> tuple[str, datetime] | None:
    """(version, deployed at) of a service's live `instances`: the version the most recently deployed instance
    runs, first seen when any instance running it first reported it; None when none reports a version."""
    versioned = [instance for instance in instances if instance.version is not None]
    if not versioned:
        return None
    version = max(versioned, key=lambda instance: (instance.version_first_seen, instance.last_seen)).version
    return version, min(instance.version_first_seen for instance in versioned if instance.version == version)


def deploys_by_service(now: datetime) -> dict[str, datetime]:
    """When each live service was last deployed (a `service.version` change), for the services that say."""
    by_service: dict[str, list[Instance]] = {}
    for instance in reported_since(now - LIVE_WINDOW):
        by_service.setdefault(instance.service, []).append(instance)
    deploys = {service: latest_deploy(instances) for service, instances in by_service.items()}
    return {service: deploy[1] for service, deploy in deploys.items() if deploy is not None}


def _main_service(live: list[Instance]) -> str | None:
    configured = settings.COMMAND_CENTER_MAIN_SERVICE
    if configured:
        return configured
    if not live:
        return None
    counts = Counter(instance.service for instance in live)
    last_seen: dict[str, datetime] = {}
    for instance in live:
        last_seen[instance.service] = max(last_seen.get(instance.service, instance.last_seen), instance.last_seen)
    # Most instances, then most recently seen, then the alphabetically first name.
    return min(counts, key=lambda service: (-counts[service], -last_seen[service].timestamp(), service))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
