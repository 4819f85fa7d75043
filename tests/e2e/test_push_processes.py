"""Push through real processes: two daphne web processes and a Celery worker sharing Redis and PostgreSQL.

An event produced in one process must reach sockets held by every web process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from django.test import Client

from bench.ws_fanout_bench import (
    BASE_DIR,
    AdminSocket,
    database_url,
    free_port,
    otlp_error_log,
    post_logs,
    server_env,
    start_daphne,
    stop,
    wait_until_serving,
)
from command_center import push
from command_center.push_tasks import publish_live_panels
from command_center.tasks import run_health_probes

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TRACE_ID = "5b8efff798038103d269b633813fc60c"


@dataclass(frozen=True)
class PushCluster:
    web_ports: tuple[int, int]
    worker_queue: str


@pytest.fixture(scope="module")
def push_cluster(django_db_setup, tmp_path_factory):
    """The processes, started once for this module against the test database."""
    tmp_path = tmp_path_factory.mktemp("push-cluster")
    dead_port = free_port()  # nothing listens there: the HTTP API probe fails
    env = server_env(database_url(connection.settings_dict), f"test-push-e2e-{uuid.uuid4().hex[:8]}",
                     KAIKU_API_HEALTH_URL=f"http://127.0.0.1:{dead_port}/healthz")
    queue = f"test-push-e2e-{uuid.uuid4().hex[:8]}"  # ours alone, whatever else shares this broker
    ports = (free_port(), free_port())
    logs = [tmp_path / f"daphne-{port}.log" for port in ports]
    processes = [start_daphne(port, env, log) for port, log in zip(ports, logs, strict=True)]
    worker_log = (tmp_path / "worker.log").open("wb")
    worker = [sys.executable, "-m", "celery", "-A", "kaiku_ops.celery:app", "worker", "-Q", queue,
              "--pool", "solo", "--without-heartbeat", "--without-gossip", "--without-mingle",
              "--loglevel", "WARNING"]
    processes.append(subprocess.Popen(worker, cwd=BASE_DIR, env=env, stdout=worker_log,
                                      stderr=subprocess.STDOUT))
    try:
        for port, process, log in zip(ports, processes, logs, strict=False):
            wait_until_serving(port, process, log)
        yield PushCluster(ports, queue)
    finally:
        for process in processes:
            stop(process)
        worker_log.close()


@pytest.fixture
def admin_cookie(superuser) -> str:
    return session_cookie(superuser)


async def sockets_on_both(cluster: PushCluster, cookie: str, *panels: str) -> list[AdminSocket]:
    sockets = [await AdminSocket.connect(port, cookie) for port in cluster.web_ports]
    for admin_socket in sockets:
        await admin_socket.subscribe(*panels)
    return sockets


async def test_an_error_log_posted_to_one_web_process_reaches_both_within_2_s(push_cluster, admin_cookie):
    sockets = await sockets_on_both(push_cluster, admin_cookie, "overview")
    marker = f"payment provider timed out ({uuid.uuid4().hex[:6]})"

    posted = time.perf_counter()
    body = otlp_error_log(marker, trace_id=TRACE_ID)
    token = settings.TELEMETRY_INGEST_TOKEN
    status = await asyncio.to_thread(post_logs, push_cluster.web_ports[0], body, token)
    assert status == 200
    arrivals = await asyncio.gather(*(admin_socket.wait_for(lambda frame: frame.get("message") == marker,
                                                            timeout=2) for admin_socket in sockets))

    for arrived, event in arrivals:
        assert arrived - posted < 2.0
        assert event["type"] == push.ERROR_EVENT
        assert set(event) == {"type", "ts", "seq", "service", "domain", "event", "message", "trace_id", "group"}
        assert (event["service"], event["domain"], event["trace_id"]) == ("kaiku-api", "db", TRACE_ID)
    for admin_socket in sockets:
        await admin_socket.close()


async def test_a_probe_failing_in_the_worker_reaches_both_web_processes(push_cluster, admin_cookie):
    sockets = await sockets_on_both(push_cluster, admin_cookie, "infrastructure")

    await asyncio.to_thread(run_health_probes.apply_async, queue=push_cluster.worker_queue)

    def http_api_went_down(frame: dict) -> bool:
        return frame["type"] == push.HEALTH_CHANGE and frame["service"] == "http_api"

    for admin_socket in sockets:  # the first run of a fresh worker includes its start-up
        _, event = await admin_socket.wait_for(http_api_went_down, timeout=30)
        assert event["new_status"] == "down"
    for admin_socket in sockets:
        await admin_socket.close()


async def test_the_worker_ticks_vital_signs_only_to_sockets_watching_them(push_cluster, admin_cookie):
    watching, not_watching = await sockets_on_both(push_cluster, admin_cookie, "overview")
    await not_watching.send_json({"type": "unsubscribe", "panels": ["overview"]})
    await not_watching.wait_for(lambda frame: frame["type"] == "subscribed")

    await asyncio.to_thread(publish_live_panels.apply_async, queue=push_cluster.worker_queue)

    _, vitals = await watching.wait_for(lambda frame: frame["type"] == push.VITAL_SIGNS, timeout=30)
    assert set(vitals) == {"type", "ts", "seq", *push.VITAL_SIGN_KEYS}
    with pytest.raises(TimeoutError):
        await not_watching.wait_for(lambda frame: frame["type"] == push.VITAL_SIGNS, timeout=1)
    for admin_socket in (watching, not_watching):
        await admin_socket.close()


async def test_daphne_delivers_the_refusal_codes_to_the_browser(push_cluster, plain_user):
    anonymous = await AdminSocket.connect(push_cluster.web_ports[1], "no-such-session")
    assert await anonymous.close_code() == 4401
    plain_cookie = await database_sync_to_async(session_cookie)(plain_user)
    not_an_admin = await AdminSocket.connect(push_cluster.web_ports[1], plain_cookie)
    assert await not_an_admin.close_code() == 4403


def session_cookie(user) -> str:
    """The session cookie a browser holds after `user` logged in to the admin."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value
