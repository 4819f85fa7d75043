"""Push fan-out benchmark: N admin sockets on one daphne process, ERROR logs POSTed to /v1/logs.

Measures, for every socket and every log, the time from the start of the OTLP POST to the arrival of its
`admin.observability.error_event` on the socket (ingestion, commit, signal, Redis channel layer, fan-out,
WebSocket), and the daphne process's RSS before and with the sockets connected.

It runs against a throwaway database `<default database>_push_bench` on the configured PostgreSQL (migrated
at the start, dropped at the end) and the configured Redis under a fresh channel prefix.

    python -m bench.ws_fanout_bench                   # 200 sockets, 40 logs, end to end
    python -m bench.ws_fanout_bench --source publish  # the fan-out alone (publisher called directly)
    python -m bench.ws_fanout_bench --quick           # 20 sockets, 5 logs: a smoke run

The socket client and the process helpers are also used by tests/e2e/test_push_processes.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import quote

import websockets
import websockets.asyncio.client
from websockets.asyncio.client import ClientConnection

BASE_DIR = Path(__file__).resolve().parent.parent
SOCKET_PATH = "/ws/admin/observability/"


# --- a browser-like socket -----------------------------------------------------------------------------

class AdminSocket:
    """One socket to /ws/admin/observability/ that collects the JSON frames it receives with their arrival
    times. (websockets, not autobahn: autobahn's asyncio flavour cannot share a process with daphne's.)"""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._frames: asyncio.Queue[tuple[float, dict]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, port: int, session_cookie: str, *, origin: str | None = None,
                      timeout: float = 10.0) -> AdminSocket:
        connection = await websockets.asyncio.client.connect(
            f"ws://127.0.0.1:{port}{SOCKET_PATH}", origin=origin or f"http://127.0.0.1:{port}",
            additional_headers={"Cookie": f"sessionid={session_cookie}"}, open_timeout=timeout)
        return cls(connection)

    async def _read(self) -> None:
        try:
            async for message in self._connection:
                self._frames.put_nowait((time.perf_counter(), json.loads(message)))
        except websockets.ConnectionClosed:
            pass

    async def send_json(self, frame: Mapping) -> None:
        await self._connection.send(json.dumps(frame))

    async def receive(self, timeout: float = 5.0) -> tuple[float, dict]:
        """(arrival time as time.perf_counter(), frame) of the next frame."""
        return await asyncio.wait_for(self._frames.get(), timeout)

    async def wait_for(self, matches: Callable[[dict], bool], timeout: float = 5.0) -> tuple[float, dict]:
        """The first frame that `matches`, skipping the others, within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            arrived, frame = await self.receive(max(0.0, deadline - time.monotonic()))
            if matches(frame):
                return arrived, frame

    async def subscribe(self, *panels: str) -> dict:
        await self.send_json({"type": "subscribe", "panels": list(panels)})
        return (await self.wait_for(lambda frame: frame["type"] == "subscribed"))[1]

    async def close_code(self, timeout: float = 5.0) -> int | None:
        """The code the server closed this socket with (waits for the close)."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self._connection.close_code

    async def close(self) -> None:
        await self._connection.close()
        await self._reader


# --- processes -----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(settings_dict: Mapping) -> str:
    """A DATABASE_URL for another process to reach the database Django is connected to."""
    credentials = quote(settings_dict.get("USER") or "", safe="")
    if settings_dict.get("PASSWORD"):
        credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = settings_dict.get("HOST") or "127.0.0.1"
    return f"postgres://{credentials}@{host}:{settings_dict.get('PORT') or 5432}/{settings_dict['NAME']}"


def server_env(database: str, channels_prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a web or worker process sharing this process's secrets, Redis and `database`."""
    from django.conf import settings

    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE", "kaiku_ops.settings")
    return {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "DATABASE_URL": database,
            "REDIS_URL": settings.REDIS_URL, "CHANNELS_PREFIX": channels_prefix,
            "SECRET_KEY": settings.SECRET_KEY, "TELEMETRY_INGEST_TOKEN": settings.TELEMETRY_INGEST_TOKEN,
            "KAIKU_DATA_DIR": str(settings.DATA_DIR), "LOG_LEVEL": "WARNING", **extra}


def start_daphne(port: int, env: Mapping[str, str], log_path: Path) -> subprocess.Popen:
    log = log_path.open("wb")
    return subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                             "kaiku_ops.asgi:application"], cwd=BASE_DIR, env=dict(env), stdout=log,
                            stderr=subprocess.STDOUT)


def wait_until_serving(port: int, process: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne on port {port} exited: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"daphne on port {port} did not answer within {timeout:.0f} s: "
                       f"{log_path.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def admin_session_cookie(username: str = "push-bench-admin") -> str:
    """A logged-in superuser session (as after the admin login page) in the configured database."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first() or user_model.objects.create_superuser(
        username, password=uuid.uuid4().hex)
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def otlp_error_log(message: str, *, service: str = "kaiku-api", domain: str = "db",
                   event: str = "db.query_failed", trace_id: str | None = None) -> bytes:
    """One ERROR log record as an OTLP/HTTP JSON export request."""
    record = {"timeUnixNano": str(time.time_ns()), "severityNumber": 17, "severityText": "ERROR",
              "body": {"stringValue": message},
              "attributes": [{"key": "kaiku.domain", "value": {"stringValue": domain}},
                             {"key": "event.name", "value": {"stringValue": event}}]}
    if trace_id:
        record["traceId"] = trace_id
    return json.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeLogs": [{"logRecords": [record]}]}]}).encode()


def post_logs(port: int, body: bytes, token: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/logs", data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# --- the benchmark -------------------------------------------------------------------------------------

def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _rss_mib(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def _send_error_log(source: str, port: int, token: str, marker: str) -> None:
    """One ERROR log: POSTed to /v1/logs (`ingest`), or handed straight to the publisher (`publish`)."""
    if source == "publish":
        from command_center import push

        push.publish_error_events([{"ts": None, "service": "kaiku-api", "domain": "db",
                                    "event": "db.query_failed", "message": marker, "trace_id": None}])
        return
    status = post_logs(port, otlp_error_log(marker), token)
    if status != 200:
        raise RuntimeError(f"/v1/logs answered {status}")


async def _measure(port: int, cookie: str, token: str, server_pid: int, sockets: int, logs: int,
                   interval_s: float, source: str) -> dict:
    rss_idle = _rss_mib(server_pid)
    clients = []
    for start in range(0, sockets, 50):  # connect in waves: the handshake backlog of one process is finite
        wave = range(start, min(sockets, start + 50))
        clients += await asyncio.gather(*(AdminSocket.connect(port, cookie) for _ in wave))
    await asyncio.gather(*(client.subscribe("overview") for client in clients))
    rss_connected = _rss_mib(server_pid)

    latencies_ms: list[float] = []
    post_ms: list[float] = []
    missing = 0
    for number in range(logs):
        marker = f"bench-{uuid.uuid4().hex[:8]}-{number}"
        started = time.perf_counter()
        await asyncio.to_thread(_send_error_log, source, port, token, marker)
        post_ms.append((time.perf_counter() - started) * 1000)
        def is_ours(frame: dict, marker: str = marker) -> bool:
            return frame.get("message") == marker

        arrivals = await asyncio.gather(*(client.wait_for(is_ours, timeout=10) for client in clients),
                                        return_exceptions=True)
        for arrival in arrivals:
            if isinstance(arrival, BaseException):
                missing += 1
            else:
                latencies_ms.append((arrival[0] - started) * 1000)
        await asyncio.sleep(interval_s)
    rss_after = _rss_mib(server_pid)
    await asyncio.gather(*(client.close() for client in clients))
    return {"source": source, "sockets": sockets, "logs": logs, "deliveries": len(latencies_ms),
            "missing": missing,
            "p50_ms": round(statistics.median(latencies_ms), 1),
            "p95_ms": round(_percentile(latencies_ms, 0.95), 1),
            "max_ms": round(max(latencies_ms), 1), "send_p50_ms": round(statistics.median(post_ms), 1),
            "rss_idle_mib": round(rss_idle, 1), "rss_connected_mib": round(rss_connected, 1),
            "rss_after_mib": round(rss_after, 1)}


def run(sockets: int, logs: int, interval_s: float, source: str = "ingest") -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kaiku_ops.settings")
    os.environ["CHANNELS_PREFIX"] = f"push-bench-{uuid.uuid4().hex[:8]}"  # the server's and ours
    django.setup()
    import psycopg
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    default = settings.DATABASES["default"]
    bench_name = f"{default['NAME']}_push_bench"
    admin_url = database_url({**default, "NAME": "postgres"})
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{bench_name}"')
    settings.DATABASES["default"]["NAME"] = bench_name
    connections["default"].close()
    connections["default"].settings_dict["NAME"] = bench_name
    server = None
    log_path = Path(settings.DATA_DIR) / "push_bench_daphne.log"
    try:
        call_command("migrate", verbosity=0)
        cookie = admin_session_cookie()
        port = free_port()
        env = server_env(database_url({**default, "NAME": bench_name}), os.environ["CHANNELS_PREFIX"])
        server = start_daphne(port, env, log_path)
        wait_until_serving(port, server, log_path)
        return asyncio.run(_measure(port, cookie, settings.TELEMETRY_INGEST_TOKEN, server.pid, sockets, logs,
                                    interval_s, source))
    finally:
        if server is not None:
            stop(server)
        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_name}" WITH (FORCE)')


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--logs", type=int, default=40, help="ERROR logs to POST, one at a time")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between logs (limit: 20/s)")
    parser.add_argument("--source", choices=("ingest", "publish"), default="ingest",
                        help="ingest: POST /v1/logs (end to end); publish: call the publisher (fan-out only)")
    parser.add_argument("--quick", action="store_true", help="20 sockets, 5 logs")
    args = parser.parse_args(argv)
    sockets, logs = (20, 5) if args.quick else (args.sockets, args.logs)
    result = run(sockets, logs, args.interval, args.source)
    print(json.dumps(result, indent=2))
    return 0 if result["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
