"""Ingestion benchmark: sustained OTLP/HTTP protobuf export into one web process (daphne), 8,192-item
batches, per signal; peak RSS of the web process; and, for comparison in the same run, two limits:
(a) the receiver's decode + contract loop alone (no HTTP, no database) and (b) COPY of the same rows
straight into PostgreSQL.

It runs against a throwaway database `<default database>_ingest_bench` on the configured server
(created and migrated here, dropped at the end unless --keep).

    python -m bench.ingest_bench             # 20 s per signal
    python -m bench.ingest_bench --quick     # 3 s per signal: a smoke run

`--error-groups off` starts the web process with the error-group writes (telemetry.error_groups.record: the
fingerprints of a request's errors and the upserts of their groups, minutes and hours) replaced by nothing, so
their cost is the difference with a default run (interleave the two).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kaiku_ops.settings")
django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.trace.v1 import trace_pb2  # noqa: E402

from telemetry import error_groups, live_windows  # noqa: E402
from telemetry.contract import LogLevel, Metric  # noqa: E402
from telemetry.ingest import logs, metrics, traces  # noqa: E402
from telemetry.ingest.buffer import PENDING_COLUMNS, _pending_row  # noqa: E402
from telemetry.ingest.outcome import IngestOutcome, TimeWindow  # noqa: E402
from telemetry.otlp import PROTOBUF, OtlpSignal, decode_request  # noqa: E402
from telemetry.storage import LOG_EVENT_COLUMNS, TRACE_COLUMNS  # noqa: E402

BATCH = 8192
TOKEN = "ingest-bench-token"
ROOT = Path(__file__).resolve().parent.parent
ROUTES = [f"/api/v1/guilds/{{guild_id}}/r{index}" for index in range(40)]
# The web process of `--error-groups off`: daphne, with the group writes made a no-op before the app loads.
SERVER_WITHOUT_ERROR_GROUPS = (
    "import sys, django; django.setup(); "
    "from telemetry import error_groups; error_groups.record = lambda occurrences, using='default': 0; "
    "from daphne.cli import CommandLineInterface; CommandLineInterface().run(sys.argv[1:])"
)


def kv(key: str, value: str | int) -> KeyValue:
    return KeyValue(
        key=key, value=AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    )


def trace_batch(rng: random.Random, now_ns: int) -> ExportTraceServiceRequest:
    """Requests of 8 spans: a SERVER entry span, 3 db spans, 4 internal spans; 1 % fail."""
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.append(kv("service.name", "vc-server"))
    spans = resource.scope_spans.add().spans
    for _ in range(BATCH // 8):
        trace_id, root = rng.randbytes(16), rng.randbytes(8)
        failed = rng.random() < 0.01
        route = rng.choice(ROUTES)
        entry = spans.add(
            trace_id=trace_id,
            span_id=root,
            name=f"GET {route}",
            kind=trace_pb2.Span.SPAN_KIND_SERVER,
            start_time_unix_nano=now_ns,
            end_time_unix_nano=now_ns + _duration_ms(rng, 300, 1500) * 1_000_000,
        )
        entry.attributes.extend(
            [
                kv("http.route", route),
                kv("http.request.method", "GET"),
                kv("http.response.status_code", 500 if failed else 200),
                kv("user.id", "u-1"),
                kv("kaiku.domain", "chat"),
            ]
        )
        if failed:
            entry.status.code = trace_pb2.Status.STATUS_CODE_ERROR
        for index in range(7):
            child = spans.add(
                trace_id=trace_id,
                span_id=rng.randbytes(8),
                parent_span_id=root,
                name="SELECT guilds" if index < 3 else "render",
                kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=now_ns,
                end_time_unix_nano=now_ns + _duration_ms(rng, 20, 150) * 1_000_000,
            )
            if index < 3:
                child.attributes.extend(
                    [
                        kv("db.system", "postgresql"),
                        kv("db.operation", "SELECT"),
                        kv("db.statement", "SELECT * FROM guilds WHERE id = $1"),
                    ]
                )
    return request


def _duration_ms(rng: random.Random, typical_max: int, slow: int) -> int:
    """Mostly fast; 0.5 % slower than the contract's slow threshold, as in a healthy platform."""
    return slow if rng.random() < 0.005 else rng.randint(1, typical_max)


def log_batch(rng: random.Random, now_ns: int) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource = request.resource_logs.add()
    resource.resource.attributes.append(kv("service.name", "vc-server"))
    records = resource.scope_logs.add().log_records
    for index in range(BATCH):
        record = records.add(
            time_unix_nano=now_ns + index,
            severity_number=17 if rng.random() < 0.3 else 13,
            trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8),
        )
        record.body.string_value = (
            f"query timeout after {rng.randint(100, 9000)} ms for guild "
            f"{rng.randint(1, 10**9)} (user bob{index}@example.com, token=abc{index}def)"
        )
        record.attributes.extend(
            [
                kv("kaiku.domain", "db"),
                kv("error.type", "db"),
                kv("db.operation", "SELECT"),
                kv("user.id", f"u-{index}"),
                kv("code.function", "guilds.load"),
            ]
        )
    return request


def metric_batch(sequence: int, now_ns: int) -> ExportMetricsServiceRequest:
    """8,192 cumulative counter points: 64 instances x 128 label sets (route x method x status)."""
    request = ExportMetricsServiceRequest()
    start_ns = now_ns - 3_600_000_000_000
    for instance in range(64):
        resource = request.resource_metrics.add()
        resource.resource.attributes.extend(
            [kv("service.name", "vc-server"), kv("service.instance.id", f"i{instance}")]
        )
        metric = resource.scope_metrics.add().metrics.add(name=Metric.HTTP_REQUESTS_TOTAL)
        metric.sum.is_monotonic = True
        metric.sum.aggregation_temporality = 2
        for label_set in range(128):
            point = metric.sum.data_points.add(
                start_time_unix_nano=start_ns,
                time_unix_nano=now_ns + sequence,
                as_int=1000 * sequence + label_set,
            )
            point.attributes.extend(
                [
                    kv("http.route", ROUTES[label_set % 40]),
                    kv("http.request.method", "GET"),
                    kv("http.response.status_code", 200 + label_set // 40),
                ]
            )
    return request


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def http_rate(
    port: int, signal: OtlpSignal, bodies: list[bytes], items: int, seconds: float
) -> tuple[float, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": PROTOBUF, "Authorization": f"Bearer {TOKEN}"}
    sent, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        connection.request("POST", f"/v1/{signal}", body=bodies[sent % len(bodies)], headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{signal}: HTTP {response.status}")
        sent += 1
    return sent * items / (time.perf_counter() - started), sent


def loop_rate(signal: OtlpSignal, bodies: list[bytes], items: int, live: bool = True) -> tuple[float, list]:
    """(a) decode + contract conversion alone (for traces with the live windows' counting and its Redis
    round trip, as ingestion does, unless `live` is False); returns items/s and the rows of the last body."""
    window = TimeWindow.around(datetime.now(UTC))
    selection = traces.TraceSelection.from_settings()
    started = time.perf_counter()
    for body in bodies:
        request = decode_request(signal, body, PROTOBUF, None, settings.TELEMETRY_MAX_BODY_BYTES)
        outcome = IngestOutcome(signal)
        if signal is OtlpSignal.TRACES:
            counts = live_windows.LiveCounts() if live else None
            rows = traces.trace_rows(request, outcome, window, selection, counts)
            if counts is not None:
                live_windows.record(counts)
        elif signal is OtlpSignal.LOGS:
            rows = logs.log_rows(request, outcome, window)
        else:
            rows = metrics.metric_points(request, outcome, window, ())
    return len(bodies) * items / (time.perf_counter() - started), rows


def live_windows_cost(bodies: list[bytes], rounds: int = 7) -> str:
    """The span loop with and without the live windows' counting, interleaved; medians and their ratio."""
    without, with_live = [], []
    for _ in range(rounds):
        without.append(loop_rate(OtlpSignal.TRACES, bodies, BATCH, live=False)[0])
        with_live.append(loop_rate(OtlpSignal.TRACES, bodies, BATCH, live=True)[0])
    plain, counted = statistics.median(without), statistics.median(with_live)
    return (f"(a) span loop, median of {rounds} interleaved: {plain:,.0f} spans/s without live windows, "
            f"{counted:,.0f} with them ({counted / plain:.2f}x)")


def error_groups_cost(bodies: list[bytes], alias: str, rounds: int = 7) -> str:
    """What counting a log request's errors into their groups costs in this process (fingerprints, then the
    group, minute and hour upserts into the bench database, as the receiver does after its COPY), beside the
    decode + conversion of the same requests; medians of `rounds` interleaved rounds."""
    window = TimeWindow.around(datetime.now(UTC))
    converting, fingerprinting, writing, errors = [], [], [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        max_bytes = settings.TELEMETRY_MAX_BODY_BYTES
        requests = [logs.log_rows(decode_request(OtlpSignal.LOGS, body, PROTOBUF, None, max_bytes),
                                  IngestOutcome(OtlpSignal.LOGS), window) for body in bodies]
        converting.append((time.perf_counter() - started) * 1000 / len(bodies))
        failed = [[row for row in rows if row["level"] == LogLevel.ERROR] for rows in requests]
        errors = sum(len(rows) for rows in failed) // len(bodies)
        started = time.perf_counter()
        occurrences = [list(map(error_groups.log_occurrence, rows)) for rows in failed]
        fingerprinting.append((time.perf_counter() - started) * 1000 / len(bodies))
        started = time.perf_counter()
        for found in occurrences:
            error_groups.record(found, alias)
        writing.append((time.perf_counter() - started) * 1000 / len(bodies))
    loop, prints, writes = (statistics.median(values) for values in (converting, fingerprinting, writing))
    return (f"(a) log requests, median of {rounds}: {loop:.0f} ms to decode and convert {BATCH:,} records; their "
            f"~{errors:,} errors: {prints:.1f} ms of fingerprints, {writes:.1f} ms of group/minute/hour upserts "
            f"({(prints + writes) / loop:.0%} of the conversion)")


def copy_rate(signal: OtlpSignal, rows: list, items: int, alias: str) -> float:
    """(b) COPY of the rows one batch stores, straight into a scratch copy of the table."""
    table, columns = {
        OtlpSignal.TRACES: ("telemetry_trace_index", TRACE_COLUMNS),
        OtlpSignal.LOGS: ("telemetry_log_events", LOG_EVENT_COLUMNS),
        OtlpSignal.METRICS: ("telemetry_metric_points_pending", PENDING_COLUMNS),
    }[signal]
    if signal is OtlpSignal.LOGS:
        from psycopg.types.json import Jsonb

        rows = [
            [Jsonb(row[column]) if column == "attrs" else row[column] for column in columns] for row in rows
        ]
    elif signal is OtlpSignal.METRICS:
        rows = [_pending_row(point) for point in rows]
    repeats, started = 20, time.perf_counter()
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE copy_target (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
        for _ in range(repeats):
            with cursor.copy(f"COPY copy_target ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    return repeats * items / (time.perf_counter() - started)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s per signal")
    parser.add_argument("--seconds", type=float, default=20.0, help="sustained sending time per signal")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--server-log", help="write the web process's output to this file (default: discard)")
    parser.add_argument("--signals", default="traces,logs,metrics",
                        help="comma-separated signals to measure (default: all three)")
    parser.add_argument("--error-groups", choices=("on", "off"), default="on",
                        help="off: the web process does not count error groups (to measure what they cost)")
    options = parser.parse_args(argv)
    seconds = 3.0 if options.quick else options.seconds
    base = settings.DATABASES["default"]
    bench_db = f"{base['NAME']}_ingest_bench"
    admin = psycopg.connect(
        host=base["HOST"],
        port=base["PORT"] or 5432,
        user=base["USER"],
        password=base["PASSWORD"] or None,
        dbname=base["NAME"],
        autocommit=True,
    )
    admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}"')
    admin.execute(f'CREATE DATABASE "{bench_db}"')
    connections.databases["ingest_bench"] = {**connections.databases["default"], "NAME": bench_db}
    call_command("migrate", database="ingest_bench", verbosity=0)
    credentials = f"{base['USER']}:{base['PASSWORD'] or ''}"
    url = f"postgresql://{credentials}@{base['HOST']}:{base['PORT'] or 5432}/{bench_db}"
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "TELEMETRY_INGEST_TOKEN": TOKEN, "LOG_LEVEL": "WARNING"}
    server_log = open(options.server_log, "ab") if options.server_log else subprocess.DEVNULL  # noqa: SIM115
    daphne = ["-m", "daphne"] if options.error_groups == "on" else ["-c", SERVER_WITHOUT_ERROR_GROUPS]
    server = subprocess.Popen(
        [sys.executable, *daphne, "-b", "127.0.0.1", "-p", str(port), "kaiku_ops.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        rng = random.Random(1)
        # Two minutes ago: accepted, and recent enough for the live windows to count the SERVER spans.
        now_ns = int((datetime.now(UTC) - timedelta(minutes=2)).timestamp() * 1e9)
        builders = {
            OtlpSignal.TRACES: lambda: [trace_batch(rng, now_ns).SerializeToString() for _ in range(4)],
            OtlpSignal.LOGS: lambda: [log_batch(rng, now_ns).SerializeToString() for _ in range(4)],
            OtlpSignal.METRICS: lambda: [
                metric_batch(sequence, now_ns).SerializeToString() for sequence in range(1, 200)
            ],
        }
        chosen = {OtlpSignal(name.strip()) for name in options.signals.split(",")}
        batches = {signal: build() for signal, build in builders.items() if signal in chosen}
        print(f"one daphne process, protobuf, {BATCH:,}-item batches, {seconds:g} s per signal, "
              f"error groups {options.error_groups}")
        print(f"{'signal':8} {'HTTP items/s':>13} {'(a) loop/s':>12} {'(b) COPY/s':>12} {'requests':>9}")
        for signal, bodies in batches.items():
            # Fresh trace/log ids per request so nothing is skipped as a duplicate would be.
            rate, sent = http_rate(
                port,
                signal,
                bodies
                if signal is OtlpSignal.METRICS
                else [_fresh(signal, rng, now_ns) for _ in range(max(4, int(seconds * 4)))],
                BATCH,
                seconds,
            )
            loop, rows = loop_rate(signal, bodies[:4], BATCH)
            copy = copy_rate(signal, rows, BATCH, "ingest_bench")
            print(f"{signal!s:8} {rate:13,.0f} {loop:12,.0f} {copy:12,.0f} {sent:9d}")
            if signal is OtlpSignal.TRACES:
                print(live_windows_cost(bodies[:4]))
            if signal is OtlpSignal.LOGS:
                print(error_groups_cost(bodies[:4], "ingest_bench"))
        print(f"peak RSS of the web process: {peak_rss_mib(server.pid):.0f} MiB")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a loaded machine; never leave the server behind
            server.kill()
            server.wait()
        connections["ingest_bench"].close()
        if not options.keep:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
        admin.close()
    return 0


def _fresh(signal: OtlpSignal, rng: random.Random, now_ns: int) -> bytes:
    batch = trace_batch(rng, now_ns) if signal is OtlpSignal.TRACES else log_batch(rng, now_ns)
    return batch.SerializeToString()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
