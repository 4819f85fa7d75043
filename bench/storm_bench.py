"""Storm benchmark: the contract's `storm` profile into ingestion while 20 admins watch the Command Center.

On a private stack (own embedded PostgreSQL and Redis, migrated, one daphne web process; see
tests/reliability/stack.py) it measures:

- ingestion: items accepted / rejected / retried by the sender (manage.py simulate_traffic --profile storm);
- API latency p50/p95 per endpoint while idle and under the storm, 20 admins polling at the design's
  cadences (section 9.2) and each holding a WebSocket subscribed to overview + logs;
- socket lag: ERROR log time → error_event frame, and the spacing of vital_signs frames;
- memory (PSS) of every process (web, PostgreSQL, Redis, Celery worker and beat, simulator, this bench)
  every 15 s, and its trend: the least-squares slope over the second half of the storm; a stack process
  whose slope exceeds the tolerance (--growth-tolerance, MB/min) fails the run;
- exactly-once: log records the sender got 200 for = rows in telemetry_log_events; spans and points the
  receiver reported stored = rows in the trace index / points the worker's minute flushes consumed.

A real Celery worker (the Procfile's options) and beat (database scheduler, every schedule of the settings)
run beside daphne, so the minute flush, probes, summary refresh and live-panel pushes are the production ones.

    python -m bench.storm_bench              # 10 minutes
    python -m bench.storm_bench --quick      # 30 seconds, 5 admins: a smoke run
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import psycopg
import requests
import websockets.asyncio.client

from tests.reliability.stack import INGEST_TOKEN, ROOT, Stack

ADMIN_USER, ADMIN_PASSWORD = "storm-admin", "storm-admin-password-1"
# Design section 9.2: seconds between polls per endpoint (summary at the infrastructure cadence).
CADENCES = {"summary": 10, "infrastructure": 10, "logs?range=1h": 15,
            "trends?metric=kaiku_http_request_duration_seconds&range=1h": 30, "top-routes?range=1h": 30,
            "top-errors?range=1h": 30, "traces?range=1h": 30}
SAMPLE_EVERY_S = 15
GROWTH_TOLERANCE_MB_PER_MIN = 1.0
JUDGE_MEMORY_FROM_S = 300  # a shorter storm's second half is start-up, not a trend
WORKER_OPTIONS = ("--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle")
POSTGRES_SHARED = "postgresql: shared memory"
POSTGRES_OWN = "postgresql: backends' own memory"
# How PostgreSQL's shared memory appears in /proc/PID/smaps: the main segment (shared buffers, WAL buffers, locks)
# and the dynamic segments (statistics, parallel queries).
SHARED_MEMORY_MAPPINGS = ("/dev/zero", "/dev/shm/PostgreSQL.")
# Judged for growth. PostgreSQL's shared memory is not: it is capped by shared_buffers (printed with it).
STACK_PROCESSES = ("web (daphne)", POSTGRES_OWN, "redis", "celery worker", "celery beat")
FLUSH_RESULT = re.compile(r"telemetry\.tasks\.flush_metric_points\[[^\]]+\] succeeded in [\d.]+s: (\{.*\})")
FAILED_TASK = re.compile(r"Task (\S+)\[[^\]]+\] raised unexpected: (.{0,150})")
# Django's format (web) and Celery's (worker, beat)
LOG_RECORD = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+) (.*)$"
                        r"|^\[\S+ \S+: (WARNING|ERROR|CRITICAL)/(\S+)\] (.*)$")
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


def memory_mb(pid: int, with_children: bool) -> tuple[float, float]:
    """(PSS, the part of it in PostgreSQL's shared memory segment) in MB. Unlike RSS, PSS shares the shared
    buffers out among the backends instead of counting them once per backend."""
    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)] if with_children else [process]
    except psutil.NoSuchProcess:
        return float("nan"), float("nan")
    total = shared = 0
    for member in family:
        try:
            for mapping in member.memory_maps(grouped=True):
                total += mapping.pss
                if mapping.path.startswith(SHARED_MEMORY_MAPPINGS):
                    shared += mapping.pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # a child that ended between the listing and the read
            pass
    return total / 2**20, shared / 2**20


def process_memory(stack: Stack, simulator: subprocess.Popen | None) -> dict[str, float]:
    """PSS of each process (with its children: PostgreSQL's backends, the worker's pool) in MB; PostgreSQL's
    also split into its shared memory (a cache of fixed size that fills as data flows) and the rest."""
    tracked = {"web (daphne)": (stack.processes["web"].pid, True),
               "redis": (stack.redis.running_pid() or 0, True),
               "celery worker": (stack.processes["worker"].pid, True),
               "celery beat": (stack.processes["beat"].pid, True),
               "bench (pollers, sockets)": (os.getpid(), False)}
    if simulator:
        tracked["simulator"] = (simulator.pid, True)
    memory = {name: memory_mb(pid, with_children)[0] for name, (pid, with_children) in tracked.items()}
    postgres_total, postgres_shared = memory_mb(stack.postgres.running_pid() or 0, True)
    return {"postgresql (all backends)": postgres_total, POSTGRES_SHARED: postgres_shared,
            POSTGRES_OWN: postgres_total - postgres_shared, **memory}


def postgres_processes(stack: Stack) -> dict[int, tuple[str, float]]:
    """Each PostgreSQL process: (its title, e.g. "postgres: postgres kaiku 127.0.0.1(5042) idle", own memory
    in MB = PSS outside the shared segments)."""
    found = {}
    try:
        family = psutil.Process(stack.postgres.running_pid() or 0)
        members = [family, *family.children()]
    except psutil.NoSuchProcess:
        return found
    postgres_port = urlsplit(stack.database_url).port
    clients = {}  # client port → the stack process holding that connection
    for name, process in stack.processes.items():
        try:
            for member in [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]:
                clients.update({c.laddr.port: name for c in member.net_connections(kind="tcp")
                                if c.raddr and c.raddr.port == postgres_port})
        except psutil.Error:
            continue
    for member in members:
        try:
            maps = member.memory_maps(grouped=True)
            title = " ".join(member.cmdline())[:70]
            if port := re.search(r"\((\d+)\)", title):
                title = f"[{clients.get(int(port.group(1)), '?')}] {title}"
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found[member.pid] = (title, sum(m.pss for m in maps if not m.path.startswith(SHARED_MEMORY_MAPPINGS)) / 2**20)
    return found


class MemorySampler(threading.Thread):
    """Samples process_memory every `every_s` seconds until stopped: (seconds since start, {process: MB})."""

    def __init__(self, stack: Stack, simulator: subprocess.Popen, every_s: float = SAMPLE_EVERY_S) -> None:
        super().__init__(daemon=True)
        self.stack, self.simulator, self.every_s = stack, simulator, every_s
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while True:
            stopping = self.stopped.wait(self.every_s) if self.samples else False
            self.samples.append((time.monotonic() - started, process_memory(self.stack, self.simulator)))
            if stopping:
                return


class WebPoolSampler(threading.Thread):
    """Five times a second: how many PostgreSQL connections the web process holds (its pool's size, which grows
    while requests wait for a connection) and how many of them are running a statement."""

    def __init__(self, stack: Stack, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.stack, self.every_s = stack, every_s
        self.samples: list[tuple[int, int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        postgres_port = urlsplit(self.stack.database_url).port
        web = psutil.Process(self.stack.processes["web"].pid)
        with psycopg.connect(self.stack.database_url.replace("postgres://", "postgresql://"),
                             autocommit=True) as conn:
            while not self.stopped.wait(self.every_s):
                try:
                    ports = {c.laddr.port for c in web.net_connections(kind="tcp")
                             if c.raddr and c.raddr.port == postgres_port}
                    states = conn.execute("SELECT client_port, state FROM pg_stat_activity "
                                          "WHERE client_port > 0 AND pid <> pg_backend_pid()").fetchall()
                except (psutil.Error, OSError, psycopg.Error):  # a sample lost to a busy machine is skipped
                    continue
                active = sum(1 for port, state in states if port in ports and state != "idle")
                self.samples.append((len(ports), active))


def slope_mb_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    points = [(t, mb) for t, mb in points if mb == mb]  # NaN: the process was gone
    if len(points) < 3:
        return float("nan")
    return statistics.linear_regression([t for t, _ in points], [mb for _, mb in points]).slope * 60


def memory_trend(samples: list[tuple[float, dict[str, float]]], storm_s: float) -> dict[str, dict[str, float]]:
    """Per process: first, last and max PSS, and the slope over the second half of the storm."""
    trend = {}
    for name in samples[0][1]:
        series = [(t, memory[name]) for t, memory in samples if name in memory]
        trend[name] = {"start": series[0][1], "end": series[-1][1], "max": max(mb for _, mb in series),
                       "slope": slope_mb_per_min([(t, mb) for t, mb in series if t >= storm_s / 2]),
                       "slope_last_quarter": slope_mb_per_min([(t, mb) for t, mb in series if t >= storm_s * .75])}
    return trend


def log_summary(path: Path, top: int = 6) -> list[str]:
    """Warnings and errors of a process log, counted by level, logger and message (numbers blanked), and the
    last lines of its tracebacks."""
    if not path.exists():
        return []
    counts: dict[str, int] = defaultdict(int)
    exceptions: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        if record := LOG_RECORD.match(line):
            level, logger, message = [part for part in record.groups() if part is not None]
            counts[f"{level} {logger}: {re.sub(r'[0-9]+', 'N', message)[:110]}"] += 1
        elif re.match(r"^\w+(\.\w+)*(Error|Exception|Timeout)\b", line.strip()):
            exceptions.append(line.strip()[:160])
    lines = [f"{count} × {what}" for what, count in sorted(counts.items(), key=lambda item: -item[1])[:top]]
    return lines + [f"traceback ends: {line}" for line in exceptions[-3:]]


def worker_results(path: Path) -> tuple[list[int], list[str]]:
    """Points consumed by each minute flush, and the tasks that failed, from the worker's INFO log."""
    text = path.read_text(errors="replace") if path.exists() else ""
    flushed = [int(ast.literal_eval(match)["points"]) for match in FLUSH_RESULT.findall(text)]
    return flushed, [f"{task}: {error}" for task, error in FAILED_TASK.findall(text)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, help="storm length (default 600, quick 30)")
    parser.add_argument("--admins", type=int, help="admin pages (default 20, quick 5)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every process of the stack, e.g. DATABASE_POOL_MAX=3")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the stack's process logs here at the end")
    parser.add_argument("--growth-tolerance", type=float, default=GROWTH_TOLERANCE_MB_PER_MIN, metavar="MB_PER_MIN",
                        help="largest PSS slope over the storm's second half that still counts as flat "
                             f"(default {GROWTH_TOLERANCE_MB_PER_MIN})")
    args = parser.parse_args(argv)
    storm_s = args.seconds or (30 if args.quick else 600)
    admin_count = args.admins or (5 if args.quick else 20)
    idle_s = 15 if args.quick else 60

    with tempfile.TemporaryDirectory(prefix="kaiku-storm-") as data_dir:
        stack = Stack(Path(data_dir), overrides=dict(item.split("=", 1) for item in args.env)).start()
        try:
            return run(stack, storm_s, admin_count, idle_s, args.growth_tolerance)
        finally:
            stack.stop()
            if args.keep_logs:
                Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
                for log in Path(data_dir).glob("*.log"):
                    shutil.copy(log, Path(args.keep_logs) / log.name)


def run(stack: Stack, storm_s: float, admin_count: int, idle_s: float, growth_tolerance: float) -> int:
    os.environ.update(stack.env)
    import django

    django.setup()
    from telemetry.ingest.buffer import flush_pending
    from telemetry.ingest.stats import receiver_stats

    stack.python(f"from django.contrib.auth import get_user_model; get_user_model().objects.create_superuser("
                 f"{ADMIN_USER!r}, password={ADMIN_PASSWORD!r})")
    stack.start_worker("worker", *WORKER_OPTIONS)
    stack.start_beat()
    admins = [Admin(stack.base_url) for _ in range(admin_count)]
    memory_before_idle = process_memory(stack, None)
    idle, idle_errors = poll_phase(admins, idle_s)

    simulator = subprocess.Popen(
        [sys.executable, "manage.py", "simulate_traffic", "--profile", "storm", "--duration", str(storm_s),
         "--url", stack.base_url, "--token", INGEST_TOKEN, "--seed", "7"],
        cwd=ROOT, env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(2)
    postgres_at_start = postgres_processes(stack)
    sampler = MemorySampler(stack, simulator)
    sampler.start()
    pool_sampler = WebPoolSampler(stack)
    pool_sampler.start()
    socket_results: dict[str, list[float]] = {}
    sockets = threading.Thread(target=lambda: socket_results.update(asyncio.run(hold_sockets(
        stack.base_url, [admin.cookie for admin in admins], storm_s - 4))), daemon=True)
    sockets.start()
    loaded, loaded_errors = poll_phase(admins, storm_s - 4)
    sockets.join(timeout=60)
    sampler.stopped.set()
    pool_sampler.stopped.set()
    sampler.join(timeout=60)
    pool_sampler.join(timeout=60)
    postgres_at_end = postgres_processes(stack)
    output = simulator.communicate(timeout=120)[0]
    stack.kill("beat", signal.SIGTERM)
    stack.kill("worker", signal.SIGTERM)  # a warm shutdown: a flush in progress completes
    flushed, job_failures = worker_results(stack.data_dir / "worker.log")
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
    for signal_name, (sent, accepted, rejected, retried) in rows.items():
        expected, found, what = checks[signal_name]
        verdict = "exactly once" if expected == found else "MISMATCH"
        print(f"| {signal_name} | {sent:,} | {accepted:,} | {rejected:,} | {retried:,} | {what}: "
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
    print(f"failed Celery task runs: {len(job_failures)} {job_failures[:3]}; minute flushes by the worker: "
          f"{len(flushed) - 1}")
    lags = socket_results.get("lag", [])
    spacing = socket_results.get("vitals_spacing", [])
    closed = [int(code) for code in socket_results.get("closed", [])]
    print(f"socket error_event lag (log time → frame): {len(lags)} frames, p50 {percentile(lags, .5):.2f} s, "
          f"p95 {percentile(lags, .95):.2f} s; vital_signs spacing p50 {percentile(spacing, .5):.1f} s, "
          f"max {max(spacing, default=float('nan')):.1f} s; sockets closed early (close codes): {closed}")

    pool_max = int(stack.env.get("DATABASE_POOL_MAX", "10"))
    held = [open_ for open_, _ in pool_sampler.samples]
    busy = [active for _, active in pool_sampler.samples]
    print(f"web process's PostgreSQL connections ({len(held)} samples, 5 a second): held (the pool's size) max "
          f"{max(held, default=0)} of {pool_max}, median {statistics.median(held) if held else float('nan'):.0f}; "
          f"running a statement max {max(busy, default=0)}, p99 {percentile(busy, .99):.0f}, "
          f"median {statistics.median(busy) if busy else float('nan'):.0f}")

    trend = memory_trend(sampler.samples, storm_s)
    print(f"\nmemory (PSS): {len(sampler.samples)} samples every {SAMPLE_EVERY_S} s; slope = least squares over "
          f"the second half of the storm; growth fails above {growth_tolerance:g} MB/min (stack processes)\n")
    (shared_buffers,), = stack.sql("SHOW shared_buffers")
    not_judged = {POSTGRES_SHARED: f"(a cache: at most shared_buffers, {shared_buffers})",
                  "postgresql (all backends)": "(the two lines below)"}
    print("| process | before idle | storm start | storm end | max | slope, 2nd half | slope, last quarter | trend |")
    print("|---|---|---|---|---|---|---|---|")
    growing = []
    for name, figures in trend.items():
        judged = name in STACK_PROCESSES and storm_s >= JUDGE_MEMORY_FROM_S
        if judged and not figures["slope"] <= growth_tolerance:  # NaN (too few samples) is not "flat"
            growing.append(name)
        if judged:
            verdict = "GROWING" if name in growing else "flat"
        else:
            verdict = not_judged.get(name, "(too short to judge)" if name in STACK_PROCESSES else "(load generator)")
        print(f"| {name} | {memory_before_idle.get(name, float('nan')):.0f} MB | {figures['start']:.0f} MB | "
              f"{figures['end']:.0f} MB | {figures['max']:.0f} MB | {figures['slope']:+.2f} MB/min | "
              f"{figures['slope_last_quarter']:+.2f} MB/min | {verdict} |")
    print("\nPostgreSQL processes with the most own memory at the end of the storm (MB; 'new' = started during it):")
    for pid, (title, own) in sorted(postgres_at_end.items(), key=lambda item: -item[1][1])[:8]:
        before = postgres_at_start.get(pid, (title, None))[1]
        print(f"  {own:6.1f} (start {'new' if before is None else f'{before:.1f}'})  {title}")
    print("\nPSS samples (MB), seconds since the storm started:")
    print("| s | " + " | ".join(trend) + " |")
    for seconds, memory in sampler.samples:
        print(f"| {seconds:.0f} | " + " | ".join(f"{memory.get(name, float('nan')):.0f}" for name in trend) + " |")

    for name in ("web", "worker", "beat"):
        if lines := log_summary(stack.data_dir / f"{name}.log"):
            print(f"\n{name} log, warnings and errors:\n" + "\n".join(lines))
    exactly_once = all(expected == found for expected, found, _ in checks.values())
    no_server_errors = not any(error.split(": ")[-1].startswith("5") for error in idle_errors + loaded_errors)
    verdicts = {"exactly once": exactly_once, "no 5xx from the API": no_server_errors,
                "no socket closed early": not closed, "memory flat": not growing}
    passed = all(verdicts.values())
    print(f"\nresult: {'pass' if passed else 'FAIL'} ("
          + ", ".join(f"{what}: {ok}" for what, ok in verdicts.items())
          + f", median {statistics.median(all_loaded) * 1000 if all_loaded else float('nan'):.0f} ms)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
