"""Storm benchmark: the contract's `storm` profile into ingestion while 20 admins watch the Command Center.

On a private stack (own embedded PostgreSQL and Redis, migrated, one daphne web process; see
tests/reliability/stack.py) it measures:

- ingestion: items accepted / rejected / retried by the sender (manage.py simulate_traffic --profile storm);
- API latency p50/p95 per endpoint while idle and under the storm, 20 admins polling at the design's
  cadences (section 9.2) and each holding a WebSocket subscribed to overview + logs;
- socket lag: ERROR log time → error_event frame, and the spacing of vital_signs frames;
- memory (PSS) of every process at start and end;
- exactly-once: log records the sender got 200 for = rows in telemetry_log_events; spans and points the
  receiver reported stored = rows in the trace index / points flushed into samples.

This process plays Celery beat for the two jobs the numbers depend on: the minute flush (every 60 s) and
publish_live_panels (every 5 s).

    python -m bench.storm_bench              # 10 minutes
    python -m bench.storm_bench --quick      # 30 seconds, 5 admins: a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests
import websockets.asyncio.client

from tests.reliability.stack import INGEST_TOKEN, ROOT, Stack

ADMIN_USER, ADMIN_PASSWORD = "storm-admin", "storm-admin-password-1"
# Design section 9.2: seconds between polls per endpoint (summary at the infrastructure cadence).
CADENCES = {"summary": 10, "infrastructure": 10, "logs?range=1h": 15,
            "trends?metric=kaiku_http_request_duration_seconds&range=1h": 30, "top-routes?range=1h": 30,
            "top-errors?range=1h": 30, "traces?range=1h": 30}
FLUSH_EVERY_S, PUBLISH_EVERY_S = 60, 5
_SIGNAL_TOTALS = r"{} (\d+)/(\d+) accepted, (\d+) rejected, (\d+) retries"
TOTALS = re.compile("; ".join(_SIGNAL_TOTALS.format(name) for name in ("points", "logs", "spans")))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def milliseconds(values: list[float]) -> str:
    """'p50 / p95' in milliseconds."""
    return f"{percentile(values, .5) * 1000:.0f} / {percentile(values, .95) * 1000:.0f}"


class Admin:
    """One admin page: a logged-in session polling the API at the design's cadences."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.get(f"{base_url}/admin/login/", timeout=30)
        response = self.session.post(f"{base_url}/admin/login/", timeout=30, allow_redirects=False, data={
            "username": ADMIN_USER, "password": ADMIN_PASSWORD, "next": "/admin/",
            "csrfmiddlewaretoken": self.session.cookies["csrftoken"]})
        assert response.status_code == 302, f"login failed: {response.status_code}"
        self.cookie = f"sessionid={self.session.cookies['sessionid']}"

    def poll(self, stop: threading.Event, latencies: dict[str, list[float]], errors: list[str]) -> None:
        due = {endpoint: time.monotonic() for endpoint in CADENCES}
        while not stop.is_set():
            endpoint = min(due, key=due.get)
            if stop.wait(max(0.0, due[endpoint] - time.monotonic())):
                return
            started = time.perf_counter()
            try:
                status = self.session.get(f"{self.base_url}/api/admin/observability/{endpoint}", timeout=30
                                          ).status_code
            except requests.RequestException as error:
                status, endpoint_error = 0, str(error)
                errors.append(f"{endpoint}: {endpoint_error[:100]}")
            latencies[endpoint.split("?")[0]].append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"{endpoint}: {status}")
            due[endpoint] += CADENCES[endpoint]


def poll_phase(admins: list[Admin], seconds: float) -> tuple[dict[str, list[float]], list[str]]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=admin.poll, args=(stop, latencies, errors), daemon=True)
               for admin in admins]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    return latencies, errors


async def hold_sockets(base_url: str, cookies: list[str], seconds: float) -> dict[str, list[float]]:
    """Each admin's socket, subscribed to overview + logs, for `seconds`; lags and vital-sign spacing."""
    lags: list[float] = []
    spacings: list[float] = []
    closed: list[float] = []
    uri = base_url.replace("http://", "ws://") + "/ws/admin/observability/"

    async def one(cookie: str) -> None:
        last_vitals = None
        async with websockets.asyncio.client.connect(uri, additional_headers={"Cookie": cookie,
                                                                             "Origin": base_url}) as socket:
            await socket.send(json.dumps({"type": "subscribe", "panels": ["overview", "logs"]}))
            deadline = time.monotonic() + seconds
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=remaining))
                except TimeoutError:
                    break
                except websockets.ConnectionClosed as error:
                    closed.append(float(error.rcvd.code if error.rcvd else 1006))
                    return
                received = datetime.now(UTC)
                if frame["type"].endswith("error_event"):
                    lags.append((received - datetime.fromisoformat(frame["ts"].replace("Z", "+00:00")))
                                .total_seconds())
                elif frame["type"].endswith("vital_signs"):
                    if last_vitals is not None:
                        spacings.append((received - last_vitals).total_seconds())
                    last_vitals = received

    await asyncio.gather(*(one(cookie) for cookie in cookies))
    return {"lag": lags, "vitals_spacing": spacings, "closed": closed}


def play_beat(stop: threading.Event, flushed_points: list[int], failures: list[str]) -> None:
    """Like beat + a worker: a failed run is recorded and the schedule goes on."""
    from command_center.push_tasks import publish_live_panels
    from telemetry.ingest.buffer import flush_pending

    next_flush = time.monotonic() + FLUSH_EVERY_S
    while not stop.wait(PUBLISH_EVERY_S):
        try:
            publish_live_panels()
            if time.monotonic() >= next_flush:
                next_flush += FLUSH_EVERY_S
                flushed_points.append(flush_pending().points)
        except Exception as error:  # a job that fails is reported, as a worker would log it
            failures.append(f"{type(error).__name__}: {str(error)[:150]}")


def process_memory(stack: Stack, simulator: subprocess.Popen | None) -> dict[str, float]:
    """PSS of each process tree in MB: unlike RSS it shares PostgreSQL's shared buffers out among the
    backends instead of counting them once per backend."""
    def tree_mb(pid: int) -> float:
        try:
            process = psutil.Process(pid)
            return sum(p.memory_full_info().pss for p in [process, *process.children(recursive=True)]) / 2**20
        except psutil.NoSuchProcess:
            return float("nan")

    pss = {"web (daphne)": tree_mb(stack.processes["web"].pid), "postgresql (all backends)":
           tree_mb(stack.postgres.running_pid() or 0), "redis": tree_mb(stack.redis.running_pid() or 0),
           "bench (pollers, sockets, beat)": tree_mb(os.getpid())}
    if simulator:
        pss["simulator"] = tree_mb(simulator.pid)
    return pss


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, help="storm length (default 600, quick 30)")
    parser.add_argument("--admins", type=int, help="admin pages (default 20, quick 5)")
    args = parser.parse_args(argv)
    storm_s = args.seconds or (30 if args.quick else 600)
    admin_count = args.admins or (5 if args.quick else 20)
    idle_s = 15 if args.quick else 60

    with tempfile.TemporaryDirectory(prefix="kaiku-storm-") as data_dir:
        stack = Stack(Path(data_dir)).start()
        try:
            return run(stack, storm_s, admin_count, idle_s)
        finally:
            stack.stop()


def run(stack: Stack, storm_s: float, admin_count: int, idle_s: float) -> int:
    os.environ.update(stack.env)
    import django

    django.setup()
    from telemetry.ingest.buffer import flush_pending
    from telemetry.ingest.stats import receiver_stats

    stack.python(f"from django.contrib.auth import get_user_model; get_user_model().objects.create_superuser("
                 f"{ADMIN_USER!r}, password={ADMIN_PASSWORD!r})")
    admins = [Admin(stack.base_url) for _ in range(admin_count)]
    memory_start = process_memory(stack, None)
    idle, idle_errors = poll_phase(admins, idle_s)

    stop_beat = threading.Event()
    flushed: list[int] = []
    job_failures: list[str] = []
    beat = threading.Thread(target=play_beat, args=(stop_beat, flushed, job_failures), daemon=True)
    beat.start()
    simulator = subprocess.Popen(
        [sys.executable, "manage.py", "simulate_traffic", "--profile", "storm", "--duration", str(storm_s),
         "--url", stack.base_url, "--token", INGEST_TOKEN, "--seed", "7"],
        cwd=ROOT, env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(2)
    memory_storm_start = process_memory(stack, simulator)
    socket_results: dict[str, list[float]] = {}
    sockets = threading.Thread(target=lambda: socket_results.update(asyncio.run(hold_sockets(
        stack.base_url, [admin.cookie for admin in admins], storm_s - 4))), daemon=True)
    sockets.start()
    loaded, loaded_errors = poll_phase(admins, storm_s - 4)
    sockets.join(timeout=60)
    memory_end = process_memory(stack, simulator)
    output = simulator.communicate(timeout=120)[0]
    stop_beat.set()
    beat.join(timeout=60)
    flushed.append(flush_pending(include_open_minute=True).points)

    totals = TOTALS.search(output.splitlines()[-1] if output else "")
    received = receiver_stats()["signals"]
    (log_rows, trace_rows, pending), = stack.sql(
        "SELECT (SELECT count(*) FROM telemetry_log_events), (SELECT count(*) FROM telemetry_trace_index), "
        "(SELECT count(*) FROM telemetry_metric_points_pending)")
    print(f"## storm: {storm_s:.0f} s, {admin_count} admins (idle phase {idle_s:.0f} s)\n")
    if not totals:
        print(f"simulator output not understood:\n{output[-2000:]}")
        return 1
    (points_ok, points_sent, points_rejected, points_retried, logs_ok, logs_sent, logs_rejected, logs_retried,
     spans_ok, spans_sent, spans_rejected, spans_retried) = map(int, totals.groups())
    print("| signal | sent | accepted (200) | rejected (partial_success) | retries | stored check |")
    print("|---|---|---|---|---|---|")
    checks = {
        "points": (int(received["metrics"]["stored"]), sum(flushed) + pending, "receiver stored = flushed"),
        "logs": (logs_ok, log_rows, "sender 200s = rows"),
        "spans": (int(received["traces"]["stored"]), trace_rows, "receiver stored = index rows"),
    }
    rows = {"points": (points_sent, points_ok, points_rejected, points_retried),
            "logs": (logs_sent, logs_ok, logs_rejected, logs_retried),
            "spans": (spans_sent, spans_ok, spans_rejected, spans_retried)}
    for signal, (sent, accepted, rejected, retried) in rows.items():
        expected, found, what = checks[signal]
        verdict = "exactly once" if expected == found else "MISMATCH"
        print(f"| {signal} | {sent:,} | {accepted:,} | {rejected:,} | {retried:,} | {what}: "
              f"{expected:,} vs {found:,} → {verdict} |")

    print("\n| endpoint | idle p50 / p95 ms | storm p50 / p95 ms | storm requests |")
    print("|---|---|---|---|")
    for endpoint in sorted(loaded):
        print(f"| {endpoint} | {milliseconds(idle[endpoint])} | {milliseconds(loaded[endpoint])} | "
              f"{len(loaded[endpoint])} |")
    all_idle = [value for values in idle.values() for value in values]
    all_loaded = [value for values in loaded.values() for value in values]
    print(f"| all | {milliseconds(all_idle)} | {milliseconds(all_loaded)} | {len(all_loaded)} |")
    print(f"\nAPI errors: idle {len(idle_errors)}, storm {len(loaded_errors)} {loaded_errors[:5]}")
    print(f"failed job runs (flush, publish_live_panels): {len(job_failures)} {job_failures[:3]}")
    lags = socket_results.get("lag", [])
    spacing = socket_results.get("vitals_spacing", [])
    print(f"socket error_event lag (log time → frame): {len(lags)} frames, p50 {percentile(lags, .5):.2f} s, "
          f"p95 {percentile(lags, .95):.2f} s; vital_signs spacing p50 {percentile(spacing, .5):.1f} s, "
          f"max {max(spacing, default=float('nan')):.1f} s; sockets closed early (close codes): "
          f"{[int(code) for code in socket_results.get('closed', [])]}")
    print("\n| process | PSS before idle | PSS at storm start | PSS at storm end |")
    print("|---|---|---|---|")
    for name in memory_storm_start:
        print(f"| {name} | {memory_start.get(name, float('nan')):.0f} MB | "
              f"{memory_storm_start[name]:.0f} MB | {memory_end.get(name, float('nan')):.0f} MB |")
    server_errors = [line.strip() for line in (stack.data_dir / "web.log").read_text(errors="replace")
                     .splitlines() if re.match(r"^\w+(\.\w+)*(Error|Exception|Timeout)\b", line.strip())]
    if server_errors:
        print("\nexceptions in the web log (last 5):\n" + "\n".join(server_errors[-5:]))
    exactly_once = all(expected == found for expected, found, _ in checks.values())
    no_server_errors = not any(error.split(": ")[-1].startswith("5") for error in idle_errors + loaded_errors)
    print(f"\nresult: {'pass' if exactly_once and no_server_errors else 'FAIL'}"
          f" (exactly once: {exactly_once}, no 5xx from the API: {no_server_errors}, "
          f"median {statistics.median(all_loaded) * 1000 if all_loaded else float('nan'):.0f} ms)")
    return 0 if exactly_once and no_server_errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
