"""Health probes against real services, a dead Redis port, a misconfigured S3 and a fake platform."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from command_center import probes
from command_center.models import HealthTransition
from command_center.signals import health_changed
from telemetry.contract import Label, Metric
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.factories import MetricSampleFactory

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakePlatform(BaseHTTPRequestHandler):
    status = 200
    delay = 0.0

    def do_GET(self):  # noqa: N802 (http.server's naming)
        time.sleep(self.delay)
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def platform(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePlatform)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.KAIKU_API_HEALTH_URL = f"http://127.0.0.1:{server.server_port}/health"
    yield FakePlatform
    FakePlatform.status, FakePlatform.delay = 200, 0.0
    server.shutdown()
    server.server_close()


def requests_before(now, count=600):
    MetricSampleFactory(
        ts=now.replace(second=0, microsecond=0) - timedelta(minutes=1),
        labels={Label.HTTP_ROUTE: "/a", Label.HTTP_STATUS_CODE: "200"},
        value_count=count,
        value_sum=float(count),
    )


def test_redis_down_is_reported_down_without_hanging(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    state, detail = probes.probe_redis(timezone.now())
    assert state == "down" and detail.startswith("PING failed (ConnectionError")
    assert time.monotonic() - started < 3


def test_redis_up_is_healthy():
    assert probes.probe_redis(timezone.now())[0] == "healthy"


def test_postgresql_select_1():
    state, detail = probes.probe_postgresql(timezone.now())
    assert state == "healthy" and detail.startswith("SELECT 1 in")


def test_s3_not_configured_is_unavailable_gracefully(settings):
    for name in ("S3_BUCKET", "S3_ENDPOINT_URL"):
        if hasattr(settings, name):
            delattr(settings, name)
    assert probes.probe_s3(timezone.now()) == ("unavailable", "not configured")


def test_s3_misconfigured_is_unavailable_with_the_reason(settings):
    settings.S3_BUCKET = "kaiku-attachments"
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings.S3_ACCESS_KEY_ID, settings.S3_SECRET_ACCESS_KEY, settings.S3_REGION = "k", "s", "us-east-1"
    state, detail = probes.probe_s3(timezone.now())
    assert state == "unavailable"
    assert detail.startswith("head_bucket kaiku-attachments failed (EndpointConnectionError")


def test_http_api_healthy_with_a_200_and_traffic(platform):
    now = timezone.now()
    requests_before(now)
    state, detail = probes.probe_http_api(now)
    assert state == "healthy", detail
    assert "health URL 200" in detail and "2.00 req/s" in detail


def test_http_api_down_when_the_health_url_fails(platform):
    platform.status = 503
    now = timezone.now()
    requests_before(now)
    assert probes.probe_http_api(now)[0] == "down"


def test_http_api_degraded_without_traffic(platform):
    state, detail = probes.probe_http_api(timezone.now())
    assert state == "degraded" and detail.endswith("no spans or request metrics in 5 min")


def test_a_hanging_probe_does_not_block_the_run(platform, settings):
    settings.COMMAND_CENTER_PROBE_TIMEOUT_SECONDS = 0.5
    platform.delay = 3.0
    started = time.monotonic()
    results = probes.run_probes()
    assert time.monotonic() - started < 2.5
    assert results["http_api"].status == "down"


def test_websocket_hub_from_fresh_metrics():
    now = timezone.now()
    assert probes.probe_websocket_hub(now)[0] == "unknown"
    MetricSampleFactory(gauge=True, ts=now.replace(second=0, microsecond=0) - timedelta(minutes=20))
    assert probes.probe_websocket_hub(now)[0] == "down"
    MetricSampleFactory(gauge=True, ts=now.replace(second=0, microsecond=0))
    assert probes.probe_websocket_hub(now) == ("healthy", "open connections 1800")


def test_otel_pipeline_follows_the_export_failure_threshold():
    now = timezone.now()
    ts = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    for metric, count in ((Metric.OTEL_EXPORTS_TOTAL, 100), (Metric.OTEL_EXPORT_FAILURES_TOTAL, 3)):
        MetricSampleFactory(
            metric_name=metric,
            ts=ts,
            labels={Label.OTEL_SIGNAL: "traces"},
            value_count=count,
            value_sum=float(count),
        )
    state, detail = probes.probe_otel_pipeline(now)
    assert state == "degraded" and detail.startswith("export failures 3.00%")


def test_transitions_are_recorded_and_signalled_once(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    health_changed.connect(receiver)
    try:
        probes.run_probes()
        probes.run_probes()
    finally:
        health_changed.disconnect(receiver)
    redis_changes = [event for event in received if event["service"] == "redis"]
    assert [(e["old_status"], e["new_status"]) for e in redis_changes] == [("unknown", "down")]
    assert HealthTransition.objects.filter(service="redis").count() == 1
    # Without metrics the other services stay "unknown": no transition to record for them.
    assert {t.service for t in HealthTransition.objects.all()} == {"postgresql", "redis", "s3"}


def test_the_matrix_is_read_from_the_cache_and_unknown_before_any_run():
    assert {s["status"] for s in probes.health_matrix()["services"]} == {"unknown"}
    probes.run_probes()
    matrix = probes.health_matrix()
    assert [s["service"] for s in matrix["services"]] == list(probes.SERVICES)
    assert matrix["services"][3]["status"] == "healthy"  # postgresql


def test_the_beat_tasks_are_registered_and_fill_the_caches(celery_worker_app):
    from command_center import tasks
    from command_center.selectors import infrastructure, overview
    from command_center.selectors.caching import cache_get

    assert {"command_center.tasks.run_health_probes", "command_center.tasks.refresh_summary",
            "command_center.tasks.evaluate_live_health"} <= set(celery_worker_app.tasks)
    states = tasks.run_health_probes()
    assert states["postgresql"] == "healthy" and states["s3"] == "unavailable"
    assert cache_get(infrastructure.CACHE_KEY)["postgresql"]["status"] == "healthy"
    tasks.refresh_summary()
    assert cache_get(overview.CACHE_KEY) is not None
    # The matrix is read from its own cache on every summary request, never from the summary's copy.
    assert overview.summary()["health"]["services"][3]["status"] == "healthy"
