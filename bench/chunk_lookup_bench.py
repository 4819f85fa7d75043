"""Trace look-up, rare-term search and bytes per record on packed logs and spans (issue 15, item 3).

Runs on the database DATABASE_URL names, already filled and packed (e.g. by `bench.api_bench --seed-days 7
--pack`), through the read API every endpoint uses (`telemetry.queries.records`), so the same command measures
any chunk layout before and after a migration:

    DATABASE_URL=... python -m bench.chunk_lookup_bench --runs 7

- spans of one trace: `records.spans(start, end, trace_id=...)` over 1 day, 7 days and 30 days ending now,
  for a trace of about 12 hours ago and for one of about 6 days ago (each run a different trace of that hour,
  so no run reads what the previous one cached in shared buffers more than a real look-up would);
- newest 100 logs containing a rare term: `records.page(records.logs(..., search=term), ...)` over 7 and 30 days;
  the term is the first of `--terms` found in at most 0.01 % of the records of 7 days (h1's candidates in
  bench/peer_bench.py: numbers the simulator writes into messages);
- bytes per packed record: every chunk day partition that holds a whole day, with its TOAST and indexes; for spans
  also the hour filter of trace ids (migration 0017: its rows of those days' hours, a share of the table's size).

Median and min of `--runs`, each case measured in turn (interleaved) so that the machine's noise hits all alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kaiku_ops.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from telemetry import packing  # noqa: E402
from telemetry.queries import records  # noqa: E402

RARE_SHARE = 0.0001
TERMS = ("24321", "17389", "28213", "12763", "21907", "9127", "8311", "7211", "6151")
SLOW = records.SlowThresholds(db_ms=100, other_ms=1000)


def traces_of_hour(hours_ago: float, count: int) -> list[str]:
    hour = timezone.now() - timedelta(hours=hours_ago)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT trace_id FROM {packing.TRACE_VIEW} WHERE ts >= %s AND ts < %s AND chunk_first_ts >= %s"
            " AND chunk_first_ts < %s LIMIT %s",
            [hour, hour + timedelta(minutes=10), hour - packing.CHUNK_SPAN, hour + timedelta(minutes=10), count],
        )
        return [row[0] for row in cursor.fetchall()]


def rare_term(candidates: tuple[str, ...], days: int) -> tuple[str, int, int]:
    end = timezone.now()
    start = end - timedelta(days=days)
    total = records.logs(start, end).count()
    for term in candidates:
        found = records.logs(start, end, search=term).count()
        if 0 < found <= RARE_SHARE * total:
            return term, found, total
    raise SystemExit(f"none of {candidates} is in at most {RARE_SHARE:.2%} of {total:,} records")


def bytes_per_record() -> dict[str, tuple[float, int]]:
    """chunk table -> (bytes per packed record over its whole-day partitions, records)."""
    today = timezone.now().strftime("%Y%m%d")
    found = {}
    with connection.cursor() as cursor:
        for table in (packing.LOG_CHUNKS, packing.TRACE_CHUNKS):
            cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                           " WHERE i.inhparent = %s::regclass AND c.relname ~ '_p[0-9]{8}$'", [table])
            partitions = [name for (name,) in cursor.fetchall() if not name.endswith(today)]
            size = rows = 0
            for name in partitions:
                cursor.execute(f"SELECT coalesce(sum(row_count), 0), min(first_ts), max(last_ts) FROM {name}")
                count, first, last = cursor.fetchone()
                if count and last - first > timedelta(hours=23):
                    cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [name])
                    size += cursor.fetchone()[0]
                    rows += count
            if table == packing.TRACE_CHUNKS:
                size += _trace_hours_bytes(cursor, partitions)
            found[table] = (size / max(rows, 1), rows)
    return found


def _trace_hours_bytes(cursor, partitions: list[str]) -> float:
    """The share of the hour filter's table (with its index) that covers the hours of the whole days measured."""
    if packing.TRACE_HOURS not in connection.introspection.table_names(cursor):
        return 0.0  # a database from before migration 0017
    days = [name.rsplit("_p", 1)[1] for name in partitions]
    cursor.execute(f"SELECT count(*) FILTER (WHERE to_char(hour, 'YYYYMMDD') = ANY(%s)), count(*),"
                   f" pg_total_relation_size(%s) FROM {packing.TRACE_HOURS}", [days, packing.TRACE_HOURS])
    measured, total, size = cursor.fetchone()
    return size * measured / max(total, 1)


def timed(call) -> tuple[float, int]:
    started = time.perf_counter()
    rows = call()
    return (time.perf_counter() - started) * 1000, rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--terms", default=",".join(TERMS), help="candidate rare terms, comma-separated")
    parser.add_argument("--traces-only", action="store_true", help="only the trace look-ups and the bytes")
    parser.add_argument("--oldest-days", type=float, default=6,
                        help="how many days ago the older looked-up trace is (within the data stored)")
    args = parser.parse_args(argv)
    now = timezone.now()
    recent, older = traces_of_hour(12, args.runs), traces_of_hour(args.oldest_days * 24, args.runs)
    if not args.traces_only:
        term, matches, total = rare_term(tuple(args.terms.split(",")), 7)
        print(f"rare term {term!r}: {matches} of {total:,} records in 7 d ({matches / total:.4%})")

    def spans_of(trace_id: str, days: int):
        return lambda: len(list(records.spans(now - timedelta(days=days), now, trace_id=trace_id, slow=SLOW)))

    def newest_logs(days: int):
        start = now - timedelta(days=days)
        return lambda: len(records.page(records.logs(start, now, search=term), start, now, None, 100)[0])

    cases: dict[str, list] = {}
    for run in range(args.runs):
        plan = {
            "spans of one trace (12 h ago), 1 d window": spans_of(recent[run % len(recent)], 1),
            "spans of one trace (12 h ago), 7 d window": spans_of(recent[run % len(recent)], 7),
            "spans of one trace (12 h ago), 30 d window": spans_of(recent[run % len(recent)], 30),
            f"spans of one trace ({args.oldest_days:g} d ago), 30 d window": spans_of(older[run % len(older)], 30),
        }
        if not args.traces_only:
            plan["newest 100 logs with the rare term, 7 d"] = newest_logs(7)
            plan["newest 100 logs with the rare term, 30 d"] = newest_logs(30)
        for label, call in plan.items():
            cases.setdefault(label, []).append(timed(call))
    for label, results in cases.items():
        times = [ms for ms, _ in results]
        print(f"  {label:48} median {statistics.median(times):8.1f} ms  min {min(times):8.1f} ms"
              f"  rows {results[0][1]}")
    for table, (per_record, rows) in bytes_per_record().items():
        print(f"  {table}: {per_record:.1f} bytes a record ({rows:,} records in whole days, with TOAST and indexes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
