"""Detection lag: how long after an incident starts the Command Center says so, and how long after it ends
it stops saying so.

A private stack (embedded PostgreSQL and Redis, daphne, a Celery worker and beat, as in the Procfile) and an
SDK-like platform (bench.incident_drill: spans every 5 s, logs every 1 s, cumulative metrics every 60 s).
After a healthy baseline, `--incidents` incidents in a row: 60 % of requests fail with 500 after 2.5 s for
`--incident-seconds`, then the platform is healthy again until everything is green. For each: seconds to the
error vital turning red, to the HTTP API row leaving "healthy", to the `health_change` push on an overview
socket, and from the incident's end back to all green.

    .venv/bin/python -m bench.detection_bench                 # 5 incidents
    .venv/bin/python -m bench.detection_bench --incidents 2   # a quicker look
    .venv/bin/python -m bench.detection_bench --quick         # one incident: a smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kaiku_ops.settings")
django.setup()

from bench.incident_drill import Observed, Operator, SdkLikePlatform, all_green, run_incident  # noqa: E402
from tests.reliability.stack import INGEST_TOKEN, Stack  # noqa: E402

GOAL_S, STRETCH_S = 15.0, 10.0
SIGNS = ("error_vital_red", "http_api_flagged", "push_received", "detected", "all_green_again")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(runs: list[Observed]) -> str:
    lines = ["| sign | p50 (s) | p95 (s) | min–max (s) | missed |", "|---|---:|---:|---:|---:|"]
    for sign in SIGNS:
        values = [value for run in runs if (value := getattr(run, sign)) is not None]
        missed = len(runs) - len(values)
        if not values:
            lines.append(f"| {sign} | — | — | — | {missed} |")
            continue
        lines.append(f"| {sign} | {statistics.median(values):.1f} | {percentile(values, 0.95):.1f} | "
                     f"{min(values):.1f}–{max(values):.1f} | {missed} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=5)
    parser.add_argument("--incident-seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second of the platform")
    parser.add_argument("--quick", action="store_true", help="one incident: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.incidents = 1
    if args.incidents < 1:
        parser.error("--incidents must be at least 1")
    with tempfile.TemporaryDirectory(prefix="kaiku-detection-") as data_dir:
        stack = Stack(Path(data_dir)).start()
        stack.start_worker("worker", "--concurrency", "2", "--loglevel", "WARNING")
        stack.start_beat()
        platform = SdkLikePlatform(stack.base_url, INGEST_TOKEN, rate=args.rate)
        platform.start()
        runs: list[Observed] = []
        try:
            with Operator(stack.base_url, stack.admin_session("bench-admin")) as operator:
                if operator.wait_until(all_green, 90) is None:
                    print("no healthy baseline within 90 s", file=sys.stderr)
                    return 1
                for number in range(1, args.incidents + 1):
                    observed = run_incident(platform, operator, detect_within=60,
                                            incident_seconds=args.incident_seconds, recover_within=180)
                    runs.append(observed)
                    print(f"incident {number}: {observed} detected={observed.detected}", flush=True)
        finally:
            platform.stop()
            stack.stop()
    print(report(runs))
    detected = [run.detected for run in runs if run.detected is not None]
    if len(detected) == len(runs):
        p95 = percentile(detected, 0.95)
        print(f"detection p95 {p95:.1f} s: goal <= {GOAL_S:.0f} s {'met' if p95 <= GOAL_S else 'missed'}, "
              f"stretch <= {STRETCH_S:.0f} s {'met' if p95 <= STRETCH_S else 'missed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
