"""The storm bench's verdicts: the memory trend rule and what it reads from the worker's and web's logs."""

from __future__ import annotations

import math

import pytest

from bench.storm_bench import log_summary, memory_trend, slope_mb_per_min, worker_results


def test_the_slope_is_in_mb_per_minute():
    assert slope_mb_per_min([(0, 100.0), (30, 102.0), (60, 104.0), (90, 106.0)]) == pytest.approx(4.0)


def test_the_slope_skips_samples_of_a_process_that_was_gone_and_needs_three_points():
    assert slope_mb_per_min([(0, 50.0), (15, math.nan), (30, 50.0), (45, 50.0)]) == pytest.approx(0.0)
    assert math.isnan(slope_mb_per_min([(0, 50.0), (15, 60.0)]))


def test_a_process_that_warms_up_then_plateaus_is_flat_and_a_steady_climb_is_not():
    storm_s = 600
    samples = [(t, {"web": min(100 + t / 10, 130.0), "leaky": 100 + t / 30}) for t in range(0, storm_s + 1, 15)]
    trend = memory_trend(samples, storm_s)
    assert trend["web"]["slope"] == pytest.approx(0.0)  # grew 30 MB in the first 5 minutes, then flat
    assert trend["web"]["start"] == 100 and trend["web"]["end"] == trend["web"]["max"] == 130
    assert trend["leaky"]["slope"] == pytest.approx(2.0)  # 1 MB every 30 s, to the end


def test_the_worker_log_gives_the_points_each_minute_flush_consumed_and_the_failed_tasks(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text(
        "[2026-11-29 16:21:54,661: INFO/ForkPoolWorker-2] Task telemetry.tasks.flush_metric_points[3e3a-d4] "
        "succeeded in 0.0064s: {'skipped': False, 'points': 1200, 'samples': 40, 'minutes': 1}\n"
        "[2026-11-29 16:22:54,673: INFO/ForkPoolWorker-1] Task telemetry.tasks.flush_metric_points[eee5-9c] "
        "succeeded in 0.0148s: {'skipped': True, 'points': 0, 'samples': 0, 'minutes': 0}\n"
        "[2026-11-29 16:22:55,001: ERROR/ForkPoolWorker-1] Task command_center.tasks.refresh_summary[77-aa] "
        "raised unexpected: OperationalError('connection refused')\n")
    assert worker_results(log) == ([1200, 0], ["command_center.tasks.refresh_summary: "
                                               "OperationalError('connection refused')"])


def test_the_log_summary_counts_warnings_by_message_and_shows_where_tracebacks_end(tmp_path):
    log = tmp_path / "web.log"
    log.write_text(
        "2026-11-29 16:15:06,823 ERROR daphne.server Exception inside application: Timeout reading from "
        "127.0.0.1:54691\nTraceback (most recent call last):\n"
        "redis.exceptions.TimeoutError: Timeout reading from 127.0.0.1:54691\n"
        "2026-11-29 16:15:16,842 ERROR daphne.server Exception inside application: Timeout reading from "
        "127.0.0.1:54691\n"
        '127.0.0.1:56330 - - [29/Nov/2026:16:15:07] "POST /v1/traces" 200 -\n'
        "[2026-11-29 16:22:55,001: WARNING/MainProcess] socket permission re-check failed for 10 s\n")
    assert log_summary(log) == [
        "2 × ERROR daphne.server: Exception inside application: Timeout reading from N.N.N.N:N",
        "1 × WARNING MainProcess: socket permission re-check failed for N s",
        "traceback ends: redis.exceptions.TimeoutError: Timeout reading from 127.0.0.1:54691",
    ]
