"""Server metadata selector: known answers from service instance rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from command_center.selectors.server import LIVE_WINDOW, server_metadata
from telemetry import service_instances
from telemetry.ingest.pipeline import ingest
from telemetry.models import ServiceInstance
from telemetry.otlp import OtlpSignal
from telemetry.simulator.platform import Platform
from telemetry.simulator.profiles import LIGHT

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def instance(service="vc-server", instance_id="pod-1", version="2.4.1", environment="production",
             first_seen=NOW - timedelta(hours=5), last_seen=NOW - timedelta(seconds=20),
             version_first_seen=None) -> ServiceInstance:
    return ServiceInstance.objects.create(
        service=service, instance_id=instance_id, version=version, environment=environment,
        first_seen=first_seen, last_seen=last_seen,
        version_first_seen=version_first_seen if version_first_seen or version is None else first_seen,
    )


def test_nothing_reported_gives_no_keys():
    assert server_metadata(NOW) == {}


def test_a_rolling_deploy_reports_the_new_version_and_when_it_was_first_seen():
    instance(instance_id="old-1", version="2.4.0", first_seen=NOW - timedelta(days=3))
    instance(instance_id="new-1", version="2.4.1", first_seen=NOW - timedelta(minutes=40))
    instance(instance_id="new-2", version="2.4.1", first_seen=NOW - timedelta(minutes=30))
    instance(instance_id="gone", version="2.3.9", first_seen=NOW - timedelta(days=9),
             last_seen=NOW - LIVE_WINDOW - timedelta(seconds=1))

    assert server_metadata(NOW) == {
        "service": "vc-server",
        "version": "2.4.1",
        "last_deploy_at": "2026-11-29T11:20:00Z",
        "environment": "production",
        "started_at": "2026-11-26T12:00:00Z",
        "uptime_seconds": 3 * 86_400,
        "instances": 3,
    }


def test_the_main_service_has_the_most_live_instances_unless_configured(settings):
    instance(service="worker", instance_id="w-1", version="9")
    instance(service="worker", instance_id="w-2", version="9")
    instance(service="vc-server", instance_id="api-1", version="2.4.1")

    assert server_metadata(NOW)["service"] == "worker"
    settings.COMMAND_CENTER_MAIN_SERVICE = "vc-server"
    assert server_metadata(NOW)["version"] == "2.4.1"
    settings.COMMAND_CENTER_MAIN_SERVICE = "not-reporting"
    assert server_metadata(NOW) == {}


def test_what_is_not_reported_stays_absent():
    instance(instance_id="", version=None, environment=None, first_seen=NOW - timedelta(minutes=10))

    assert server_metadata(NOW) == {"service": "vc-server", "started_at": "2026-11-29T11:50:00Z",
                                    "uptime_seconds": 600}


def test_the_environment_comes_from_the_most_recently_seen_instance():
    instance(instance_id="a", environment="staging", last_seen=NOW - timedelta(minutes=2))
    instance(instance_id="b", environment="production", last_seen=NOW - timedelta(seconds=5))
    instance(instance_id="c", environment=None, last_seen=NOW)

    assert server_metadata(NOW)["environment"] == "production"


def test_the_simulated_platform_shows_its_version_and_environment():
    service_instances.forget_written()
    started = NOW - timedelta(minutes=3)
    platform = Platform(LIGHT, seed=1, started_at=started)
    for seconds in (0, 60, 120, 180):
        batch = platform.step(started + timedelta(seconds=seconds), 60)
        ingest(OtlpSignal.TRACES, batch.traces, now=started + timedelta(seconds=seconds))

    assert server_metadata(NOW) == {
        "service": "vc-server",
        "version": "2.4.1",
        "last_deploy_at": "2026-11-29T11:57:00Z",
        "environment": "demo",
        "started_at": "2026-11-29T11:57:00Z",
        "uptime_seconds": 180,
        "instances": 1,
    }
