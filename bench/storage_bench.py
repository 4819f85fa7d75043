"""Storage benchmark: fill N days at the contract's `heavy` profile, then measure what matters.

Reports table sizes per day and per 30 days, the purge of one expired day (and of one hour, the
hourly steady state), the rollup refresh time and a few command-center queries.

The data is generated inside PostgreSQL (INSERT ... SELECT generate_series), day by day, into a
throwaway database `<default database>_storage_bench` on the configured server (dropped at the
end unless --keep). Volumes per day at `heavy` (contract section 11) and the assumptions behind
them are in VOLUMES below and in docs/benchmarks.md.

    python -m bench.storage_bench            # 31 days (30 kept + 1 expired)
    python -m bench.storage_bench --days 3   # per-day figures and the tiers, in minutes
    python -m bench.storage_bench --quick    # 2 days at 2 % volume: a smoke run

Retention tiers (`--sample-days`, `--sampled-trace-days`, default 3 each): after the measurements at full
volume, the bench applies them as retention would once the oldest filled days are past them, reports the
size of a compacted trace day and projects 30 days at `heavy` with those tiers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kaiku_ops.settings")
django.setup()

import psycopg  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import override_settings  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from telemetry.contract import CATALOGUE, Kind, Label, Metric  # noqa: E402
from telemetry.partitions import PARTITIONED_TABLES  # noqa: E402
from telemetry.retention import enforce_retention  # noqa: E402
from telemetry.rollups import ROLLUP_VIEWS, refresh_rollups  # noqa: E402

ALIAS = "storage_bench"
SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class Volumes:
    """Rows per day at `heavy`: 200 req/s, 40 routes, 2 WARN+ERROR logs/s, 300 voice sessions."""

    log_events: int = 2 * SECONDS_PER_DAY
    # Kept spans of 200 req/s: 1 % sampled traces (entry span + 2 db spans: 6/s), 0.5 % errors (1/s),
    # 0.5 % slow entry spans (1/s); slow db spans are mostly inside those: about 8 rows/s, of which
    # 6 are kept only because their trace was sampled (kept_reason 'p'), 1 error ('e') and 1 slow ('s').
    trace_rows: int = 8 * SECONDS_PER_DAY
    # 300 concurrent sessions of ~20 minutes.
    voice_sessions: int = 300 * 72
    # One quality row per session per minute (the platform's cadence is its own; see the docs).
    voice_metrics: int = 300 * 1440


VOLUMES = Volumes()
ROUTES = [f"/api/v1/{resource}/{{id}}" for resource in (
    "guilds", "channels", "messages", "users", "invites", "roles", "members", "voice", "files", "reactions",
)] + [f"/api/v1/guilds/{{guild_id}}/{resource}" for resource in (
    "channels", "members", "roles", "bans", "emojis", "invites", "audit", "settings", "webhooks", "threads",
)] + [f"/api/v1/channels/{{channel_id}}/{resource}" for resource in (
    "messages", "pins", "typing", "threads", "webhooks", "permissions", "invites", "search", "voice", "read",
)] + [f"/api/v1/{resource}" for resource in (
    "auth/login", "auth/refresh", "auth/logout", "users/me", "gateway", "health", "search", "notifications",
    "settings", "uploads",
)]
SECONDS_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
HISTOGRAM_BOUNDS = {
    Metric.VOICE_ROOM_PARTICIPANTS: [1, 2, 3, 4, 5, 8, 10, 15, 20, 30, 50],
    Metric.VOICE_SESSION_DURATION_SECONDS: [30, 60, 300, 600, 1800, 3600, 7200],
}
# Label value -> probability that the label set is active in a given minute.
STATUS_ODDS = {"200": 1.0, "404": 0.3, "500": 0.05}
ERROR_ODDS = {("404", "validation"): 0.3, ("500", "internal"): 0.05}
VALUES_BY_LABEL = {
    Label.DB_OPERATION: ["select", "insert", "update", "delete"],
    Label.WS_EVENT_TYPE: ["message.create", "message.update", "typing", "presence", "voice.state",
                          "channel.update", "member.update", "reaction.add"],
    Label.OTEL_SIGNAL: ["traces", "metrics", "logs"],
}


def label_sets() -> list[tuple[str, dict, float, list[float] | None]]:
    """(metric, labels, probability per minute, bucket bounds) for every active v1 label set."""
    sets = []
    for name, spec in CATALOGUE.items():
        if spec.flag is not None:
            continue
        bounds = HISTOGRAM_BOUNDS.get(name, SECONDS_BOUNDS) if spec.kind == Kind.HISTOGRAM else None
        labels = set(spec.labels)
        if Label.ERROR_TYPE in labels:
            combos = [({Label.HTTP_ROUTE: route, Label.HTTP_STATUS_CODE: status, Label.ERROR_TYPE: error}, odds)
                      for route in ROUTES for (status, error), odds in ERROR_ODDS.items()]
        elif Label.HTTP_ROUTE in labels:
            combos = [({Label.HTTP_ROUTE: route, Label.HTTP_METHOD: "POST" if index % 5 == 0 else "GET",
                        Label.HTTP_STATUS_CODE: status}, odds)
                      for index, route in enumerate(ROUTES) for status, odds in STATUS_ODDS.items()]
        elif Label.OUTCOME in labels:
            combos = [({Label.OUTCOME: outcome}, 1.0 if index == 0 else 0.3)
                      for index, outcome in enumerate(spec.outcomes)]
        elif labels:
            (label,) = labels
            failure = spec.kind == Kind.COUNTER and spec.signal == "errors"
            combos = [({label: value}, 0.05 if failure else 1.0) for value in VALUES_BY_LABEL[label]]
        else:
            combos = [({}, 1.0)]
        sets += [(str(name), {str(k): v for k, v in labels_.items()}, odds, bounds) for labels_, odds in combos]
    return sets


def fill_day(cursor, day: datetime, scale: float) -> None:
    end = day + timedelta(days=1)
    cursor.execute(
        """INSERT INTO telemetry_metric_samples (ts, metric_name, scope, labels, value_count, value_sum,
                   value_p50, value_p95, value_p99, bucket_bounds, bucket_counts)
           SELECT m.ts, s.metric_name, 'cluster', s.labels, (1 + random() * 400)::bigint, random() * 1000,
                  CASE WHEN s.bounds IS NOT NULL THEN random() * 0.05 END,
                  CASE WHEN s.bounds IS NOT NULL THEN 0.05 + random() * 0.3 END,
                  CASE WHEN s.bounds IS NOT NULL THEN 0.3 + random() END,
                  s.bounds,
                  CASE WHEN s.bounds IS NOT NULL THEN
                       ARRAY(SELECT (random() * 60)::bigint FROM generate_series(0, cardinality(s.bounds))) END
           FROM generate_series(%s::timestamptz, %s::timestamptz - interval '1 minute', interval '1 minute') m(ts)
           JOIN bench_label_sets s ON random() < s.odds * %s""",
        [day, end, scale],
    )
    logs = int(VOLUMES.log_events * scale)
    cursor.execute(
        """INSERT INTO telemetry_log_events (ts, id, level, service, domain, event, message, trace_id, span_id,
                                             attrs)
           SELECT %s::timestamptz + i * (86400.0 / %s) * interval '1 second', gen_random_uuid(),
                  CASE WHEN i %% 3 = 0 THEN 'ERROR' ELSE 'WARN' END, 'vc-server',
                  (ARRAY['auth','chat','voice','ws','db','admin','crypto','telemetry'])[1 + (i * 7) %% 8],
                  (ARRAY['auth.login_failed','chat.send_slow','voice.join_failed','ws.dropped','db.slow_query',
                         'admin.denied','crypto.key_rotation','telemetry.export_failed'])[1 + (i * 13) %% 8],
                  (ARRAY['login rejected for [email]: invalid credentials after 3 attempts',
                         'message send took longer than the 500 ms budget (channel [uuid], 812 ms)',
                         'SFU rejected the join: room is full (capacity 25, participants 25)',
                         'websocket closed by peer with code 1006 after 42 s without heartbeat',
                         'query exceeded 100 ms: SELECT on messages by channel_id, 233 ms',
                         'permission denied for admin endpoint /api/v1/admin/users',
                         'key rotation postponed: previous rotation still in progress',
                         'OTLP export failed: collector answered 503, retrying in 5 s'])[1 + (i * 13) %% 8]
                    || ' #' || (i %% 9973),
                  CASE WHEN i %% 10 < 7 THEN md5(i::text || 't') END,
                  CASE WHEN i %% 10 < 7 THEN left(md5(i::text || 's'), 16) END,
                  CASE WHEN i %% 3 = 0 THEN jsonb_build_object('error.type', 'internal',
                       'exception.type', 'TimeoutError', 'code.function', 'handle_request')
                       ELSE '{}'::jsonb END
           FROM generate_series(0, %s - 1) i""",
        [day, logs, logs],
    )
    traces = int(VOLUMES.trace_rows * scale)
    cursor.execute(
        """INSERT INTO telemetry_trace_index (ts, id, duration_ms, trace_id, span_name, domain, route, status_code,
                                              service, kept_reason)
           SELECT %s::timestamptz + i * (86400.0 / %s) * interval '1 second', gen_random_uuid(),
                  CASE WHEN i %% 8 = 1 THEN 1000 + (random() * 4000)::int
                       WHEN i %% 3 = 0 THEN 5 + (random() * 90)::int ELSE 20 + (random() * 900)::int END,
                  md5((i / 3)::text || %s), CASE WHEN i %% 3 = 0 THEN 'db.query' ELSE 'http.server.request' END,
                  CASE WHEN i %% 3 = 0 THEN 'db' ELSE 'api' END,
                  (%s::text[])[1 + (i * 7) %% 40],
                  CASE WHEN i %% 8 = 0 AND i %% 3 = 0 THEN 'ERROR' WHEN i %% 8 = 0 THEN '500'
                       WHEN i %% 3 = 0 THEN 'OK' ELSE '200' END, 'vc-server',
                  CASE i %% 8 WHEN 0 THEN 'e' WHEN 1 THEN 's' ELSE 'p' END
           FROM generate_series(0, %s - 1) i""",
        [day, traces, day.isoformat(), ROUTES, traces],
    )
    sessions = int(VOLUMES.voice_sessions * scale)
    cursor.execute(
        """INSERT INTO connection_sessions (started_at, ended_at, id, outcome)
           SELECT %s::timestamptz + i * (86400.0 / %s) * interval '1 second',
                  %s::timestamptz + i * (86400.0 / %s) * interval '1 second' + interval '20 minutes',
                  gen_random_uuid(), CASE WHEN i %% 50 = 0 THEN 'crash' ELSE 'normal' END
           FROM generate_series(0, %s - 1) i""",
        [day, sessions, day, sessions, sessions],
    )
    metrics = int(VOLUMES.voice_metrics * scale)
    cursor.execute(
        """INSERT INTO connection_metrics (ts, packet_loss, session_id, latency_ms, jitter_ms, quality)
           SELECT %s::timestamptz + (i / 300) * interval '1 minute' + (i %% 300) * interval '1 millisecond',
                  random() * 4, md5((i %% 300)::text || (i / 6000))::uuid,
                  20 + (random() * 150)::int, (random() * 60)::int, (random() * 3)::int
           FROM generate_series(0, %s - 1) i""",
        [day, metrics],
    )


def table_sizes(cursor, tables) -> dict[str, int]:
    sizes = {}
    for table in tables:
        cursor.execute("SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree(%s)",
                       [table])
        sizes[table] = int(cursor.fetchone()[0])
    return sizes


def day_sizes(cursor, day: datetime) -> dict[str, int]:
    return {table: _size(cursor, f"{table}_p{day:%Y%m%d}") for table in PARTITIONED_TABLES}


def _size(cursor, relation: str) -> int:
    cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [relation])
    return int(cursor.fetchone()[0])


def relation_sizes(cursor, relation: str) -> dict[str, int]:
    """Heap (with TOAST) and each index of one table, in bytes."""
    cursor.execute(
        """SELECT 'heap', pg_table_size(%s::regclass)
           UNION ALL
           SELECT regexp_replace(indexrelid::regclass::text, '^.*_p[0-9]{8}_?', ''), pg_relation_size(indexrelid)
           FROM pg_index WHERE indrelid = %s::regclass""",
        [relation, relation],
    )
    return {name: int(size) for name, size in cursor.fetchall()}


def _per_row(sizes: dict[str, int], rows: int) -> str:
    return ", ".join(f"{name} {size / max(rows, 1):.1f}" for name, size in sizes.items())


def timed_query(cursor, sql: str, params: list, repeat: int = 5) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        cursor.execute(sql, params)
        cursor.fetchall()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def _durations(durations: dict[str, int]) -> str:
    return ", ".join(f"{view} {ms:,} ms" for view, ms in durations.items())


def mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 days at 2 %% of the heavy volume")
    parser.add_argument("--days", type=int, default=31, help="days to fill, ending yesterday (default 31)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the heavy volume (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument("--sample-days", type=int, default=3,
                        help="minute samples tier to apply and project, days (default 3; 30 = no tier)")
    parser.add_argument("--sampled-trace-days", type=int, default=3,
                        help="sampled-only spans tier to apply and project, days (default 3; 30 = no tier)")
    args = parser.parse_args(argv)
    days, scale = (2, 0.02) if args.quick else (args.days, args.scale)
    args.days_filled = days
    if not 1 <= days <= 31 or not 0 < scale <= 1:
        parser.error("--days must be 1-31 and --scale in (0, 1]")

    default = connections["default"].settings_dict
    name = f"{default['NAME']}_storage_bench"
    server = {"host": default["HOST"] or None, "port": default["PORT"] or None, "user": default["USER"],
              "password": default["PASSWORD"] or None}
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    options = {key: value for key, value in default["OPTIONS"].items() if key != "pool"}
    connections.settings[ALIAS] = {**connections.settings["default"], "NAME": name, "OPTIONS": options}
    try:
        return run(days, scale, args)
    finally:
        connections[ALIAS].close()
        if not args.keep:
            with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(days: int, scale: float, args) -> int:
    call_command("migrate", database=ALIAS, verbosity=0)
    connection = connections[ALIAS]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    fill_days = [today - timedelta(days=offset) for offset in range(days, 0, -1)]
    print(f"storage bench: {days} days at {scale:g} x heavy, database {connection.settings_dict['NAME']}")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_label_sets (metric_name text, labels jsonb, odds float8, bounds float8[])")
        sets = label_sets()
        cursor.executemany("INSERT INTO bench_label_sets VALUES (%s, %s, %s, %s)",
                           [(metric, Jsonb(labels), odds, bounds) for metric, labels, odds, bounds in sets])
        print(f"  {len(sets)} label sets, {sum(odds for _, _, odds, _ in sets):.0f} active per minute on average")
        fill_started = time.perf_counter()
        for day in fill_days:
            started = time.perf_counter()
            fill_day(cursor, day, scale)
            print(f"  filled {day:%Y-%m-%d} in {time.perf_counter() - started:.1f} s", flush=True)
        cursor.execute("DROP TABLE bench_label_sets")
        cursor.execute("VACUUM ANALYZE")
        print(f"  fill: {time.perf_counter() - fill_started:.0f} s")

        counts = {}
        for table in PARTITIONED_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
        full_day = fill_days[len(fill_days) // 2]
        per_day = day_sizes(cursor, full_day)
        trace_day = f"telemetry_trace_index_p{full_day:%Y%m%d}"
        cursor.execute(f"SELECT count(*) FROM {trace_day}")
        trace_day_rows = cursor.fetchone()[0]
        totals = table_sizes(cursor, PARTITIONED_TABLES)
        print(f"\n  {'table':28} {'rows/day':>12} {'size/day':>12} {'x30 days':>12}")
        for table in PARTITIONED_TABLES:
            print(f"  {table:28} {counts[table] / days:12,.0f} {mib(per_day[table]):>12} "
                  f"{mib(per_day[table] * 30):>12}")
        native = [table for table in PARTITIONED_TABLES if not table.startswith("connection_")]
        print(f"  native telemetry tables: {mib(sum(per_day[t] for t in native))}/day, "
              f"{mib(30 * sum(per_day[t] for t in native))}/30 days "
              f"(with voice copies: {mib(30 * sum(per_day.values()))}); all {days} days stored: "
              f"{mib(sum(totals.values()))}")
        print(f"  trace index bytes/row ({trace_day_rows:,} rows): "
              f"{_per_row(relation_sizes(cursor, trace_day), trace_day_rows)}")

        day_ago = today - timedelta(days=1)
        queries = {
            "latest 100 ERROR logs, 24 h": (
                "SELECT * FROM telemetry_log_events WHERE level = 'ERROR' AND ts >= %s ORDER BY ts DESC LIMIT 100",
                [day_ago]),
            "latest 100 voice logs, 24 h": (
                "SELECT * FROM telemetry_log_events WHERE domain = 'voice' AND ts >= %s ORDER BY ts DESC LIMIT 100",
                [day_ago]),
            "100 slowest db spans, 24 h": (
                "SELECT * FROM telemetry_trace_index WHERE domain = 'db' AND ts >= %s"
                " ORDER BY duration_ms DESC LIMIT 100", [day_ago]),
            "spans of one trace": (
                "SELECT * FROM telemetry_trace_index WHERE trace_id = md5('7' || %s)", [full_day.isoformat()]),
            "requests per minute, 24 h": (
                "SELECT ts, sum(value_count) FROM telemetry_metric_samples WHERE metric_name = %s AND ts >= %s"
                " GROUP BY ts ORDER BY ts", [str(Metric.HTTP_REQUESTS_TOTAL), day_ago]),
            "latency buckets per hour, 7 d (hourly rollup)": (
                "SELECT hour, bucket_counts FROM telemetry_trend_rollups_hourly WHERE metric_name = %s"
                " AND hour >= %s", [str(Metric.HTTP_REQUEST_DURATION_SECONDS), today - timedelta(days=7)]),
            "requests per day, 30 d (daily rollup)": (
                "SELECT day, sum(total_count), sum(error_count) FROM telemetry_trend_rollups WHERE metric_name = %s"
                " GROUP BY day ORDER BY day", [str(Metric.HTTP_REQUESTS_TOTAL)]),
        }
        durations = refresh_rollups(using=ALIAS)
        print("  first rollup refresh (every hour changed): " + _durations(durations))
        cursor.execute("ANALYZE telemetry_trend_rollups_hourly; ANALYZE telemetry_trend_rollups")
        cursor.execute("SELECT sum(pg_total_relation_size(relname::regclass)) FROM unnest(%s::text[]) relname",
                       [list(ROLLUP_VIEWS)])
        args.rollup_bytes = int(cursor.fetchone()[0])
        print(f"  rollups (hourly table, daily view): {mib(args.rollup_bytes)}")
        print("\n  command-center queries (median of 5):")
        for label, (sql, params) in queries.items():
            print(f"    {label:48} {timed_query(cursor, sql, params):8.1f} ms")

    print("\n  maintenance:")
    durations = refresh_rollups(using=ALIAS, full=True)
    print("    rollup full rebuild (after a backfill): " + _durations(durations))
    with connections[ALIAS].cursor() as cursor:
        # The steady state: the samples of the last hour changed since the previous refresh.
        last_hour = today - timedelta(hours=1)
        cursor.execute("UPDATE telemetry_metric_samples SET value_count = value_count WHERE ts >= %s AND ts < %s",
                       [last_hour, today])
    durations = refresh_rollups(using=ALIAS)
    print("    hourly rollup refresh (one hour changed): " + _durations(durations))
    # The cap alone first (the tiers' work is measured on its own below).
    no_tiers = override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=30, TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS=30)
    if days == 31:
        with no_tiers:
            report = enforce_retention(now=today, using=ALIAS)
        purge_ms = sum(t.duration_ms for t in report.tables)
        print(f"    purge of one expired day: {report.partitions_dropped} partitions, {report.rows_deleted:,} rows "
              f"in {purge_ms} ms (+ rollup refresh; whole run {report.duration_ms} ms)")
        print("      " + ", ".join(f"{t.table} {t.duration_ms} ms" for t in report.tables))
        with no_tiers:
            report = enforce_retention(now=today + timedelta(hours=1), using=ALIAS)
        purge_ms = sum(t.duration_ms for t in report.tables)
        print(f"    hourly purge inside the boundary day: {report.rows_deleted:,} rows in {purge_ms} ms "
              f"(+ rollup refresh; whole run {report.duration_ms} ms)")
        measure_tiers(today + timedelta(hours=1), per_day, args)
    else:
        # The oldest filled day just past the trace tier, so that its trace partition gets compacted.
        measure_tiers(fill_days[0] + timedelta(days=1 + args.sampled_trace_days), per_day, args)
        with no_tiers:
            report = enforce_retention(now=fill_days[0] + timedelta(days=31), using=ALIAS)
        purge_ms = sum(t.duration_ms for t in report.tables)
        print(f"    purge of the oldest filled day: {report.partitions_dropped} partitions, {report.rows_deleted:,} "
              f"rows in {purge_ms} ms (whole run with rollup refresh {report.duration_ms} ms)")
        print("      " + ", ".join(f"{t.table} {t.duration_ms} ms" for t in report.tables))
    return 0


def measure_tiers(now: datetime, per_day: dict[str, int], args) -> None:
    """Apply the retention tiers as the hourly job would at `now`; print what they removed, the size of a
    compacted trace day and the 30-day projection at this volume."""
    tiers = {"TELEMETRY_SAMPLE_RETENTION_DAYS": args.sample_days,
             "TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS": args.sampled_trace_days}
    with override_settings(**tiers):
        # The empty partitions before the filled days first, so that the run measured compacts filled days only.
        enforce_retention(now=now - timedelta(days=1), using=ALIAS)
        report = enforce_retention(now=now, using=ALIAS)
    print(f"\n  retention tiers (samples {args.sample_days} d, sampled-only spans {args.sampled_trace_days} d), "
          f"as at {now:%Y-%m-%d %H:%M}:")
    for tier in report.tiers:
        changed = len(tier.partitions_dropped) + len(tier.partitions_compacted)
        print(f"    {tier.table}, {tier.tier}: {tier.rows_deleted:,} rows, {len(tier.partitions_dropped)} "
              f"partitions dropped, {len(tier.partitions_compacted)} compacted in {tier.duration_ms:,} ms"
              + (f" ({tier.duration_ms / changed:,.0f} ms per partition)" if changed else ""))
    traces = "telemetry_trace_index"
    compacted = sorted(name for tier in report.tiers for name in tier.partitions_compacted)
    with connections[ALIAS].cursor() as cursor:
        # The empty days before the filled ones are compacted too: take the biggest compacted day.
        sizes = {name: _size(cursor, name) for name in compacted}
    compacted_day = max(sizes, key=sizes.get) if sizes else None
    rollups = args.rollup_bytes * 30 / args.days_filled  # as first refreshed; hourly + daily rows grow with days
    with connections[ALIAS].cursor() as cursor:
        if compacted_day is None:
            print("    (no trace day was compacted: nothing to project)")
            return
        cursor.execute(f"SELECT count(*) FROM {compacted_day}")
        rows = cursor.fetchone()[0]
        compacted_size = _size(cursor, compacted_day)
        print(f"    compacted trace day: {rows:,} rows, {mib(compacted_size)} (full day {mib(per_day[traces])}); "
              f"bytes/row: {_per_row(relation_sizes(cursor, compacted_day), rows)}")
    sample_days = min(args.sample_days, 30)
    trace_days = min(args.sampled_trace_days, 30)
    projected = {
        traces: trace_days * per_day[traces] + (30 - trace_days) * compacted_size,
        "telemetry_metric_samples": sample_days * per_day["telemetry_metric_samples"],
        "rollups (hourly table + daily view)": rollups,
    }
    projected.update({table: 30 * size for table, size in per_day.items()
                      if table not in projected and not table.startswith("connection_")})
    print("    projected 30 days at this volume with these tiers:")
    for table, size in projected.items():
        print(f"      {table:38} {mib(int(size)):>12}")
    print(f"      {'native telemetry together':38} {mib(int(sum(projected.values()))):>12}")
    native = [table for table in PARTITIONED_TABLES if not table.startswith("connection_")]
    with connections[ALIAS].cursor() as cursor:
        stored = sum(table_sizes(cursor, native).values()) + args.rollup_bytes
    print(f"    stored now, native tables and rollups (all days filled, after the tiers): {mib(stored)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
