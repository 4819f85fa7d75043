"""seed_demo: history through the receiver's own pipeline, up to a boundary, idempotent per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Max, Sum

from telemetry.contract import Metric
from telemetry.ingest.buffer import flush_pending
from telemetry.ingest.pipeline import ingest
from telemetry.ingest.seed import seed_history
from telemetry.models import LogEvent, MetricSample, TraceIndexEntry
from telemetry.otlp import OtlpSignal
from telemetry.queries.live import live_red
from telemetry.simulator.platform import Platform
from telemetry.simulator.profiles import get_profile

pytestmark = pytest.mark.django_db

LIGHT = get_profile("light")
# Early in yesterday's UTC day, so the day holds a few steps only and nothing is in the future.
UNTIL = (datetime.now(UTC) - timedelta(days=1)).replace(hour=1, minute=30, second=0, microsecond=0)
DAY_START = UNTIL.replace(hour=0, minute=0)
MINUTE = timedelta(minutes=1)


def request_minutes(since=None, until=None) -> list[datetime]:
    rows = MetricSample.objects.filter(metric_name=Metric.HTTP_REQUESTS_TOTAL)
    if since:
        rows = rows.filter(ts__gte=since)
    if until:
        rows = rows.filter(ts__lt=until)
    return sorted(set(rows.values_list("ts", flat=True)))


def requests_in(since, until) -> int:
    rows = MetricSample.objects.filter(metric_name=Metric.HTTP_REQUESTS_TOTAL, ts__gte=since, ts__lt=until)
    return rows.aggregate(total=Sum("value_count"))["total"] or 0


def seeded_until(day) -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT finished_at FROM telemetry_seed_days WHERE day = %s", [day])
        row = cursor.fetchone()
    return row[0] if row else None


def mark(day, finished_at) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO telemetry_seed_days (day, profile, finished_at) VALUES (%s, 'light', %s)",
                       [day, finished_at])


def test_a_seeded_day_holds_samples_logs_and_traces_and_is_not_seeded_twice():
    first = seed_history(1, LIGHT, step=timedelta(minutes=15), until=UNTIL)
    counts = (MetricSample.objects.count(), LogEvent.objects.count(), TraceIndexEntry.objects.count())
    again = seed_history(1, LIGHT, step=timedelta(minutes=15), until=UNTIL)

    assert [part.skipped for part in first.days] == [False, False]
    assert [part.skipped for part in again.days] == [True]
    assert first.days[0].data_points > 0
    assert counts[0] > 0 and counts[1] > 0 and counts[2] > 0
    assert (MetricSample.objects.count(), LogEvent.objects.count(), TraceIndexEntry.objects.count()) == counts
    assert seeded_until(UNTIL.date()) == UNTIL


def test_the_last_hour_goes_first_a_minute_a_step_flushed_and_ends_before_the_boundary():
    seen = []
    seed_history(1, LIGHT, step=timedelta(minutes=15), until=UNTIL, on_day=lambda part: seen.append(
        (part.start, part.end, part.step, part.recent, part.samples)))

    recent_from = UNTIL - timedelta(hours=1)
    assert seen[0][:4] == (recent_from, UNTIL, MINUTE, True) and seen[0][4] > 0  # flushed at once
    assert seen[1][:4] == (DAY_START, recent_from, timedelta(minutes=15), False)
    # minute resolution in the last hour, the coarse step before it, nothing at or after the boundary
    assert request_minutes(since=recent_from) == [recent_from + n * MINUTE for n in range(60)]
    assert request_minutes(until=recent_from) == [DAY_START + n * timedelta(minutes=15) for n in range(2)]
    assert not MetricSample.objects.filter(ts__gte=UNTIL).exists()
    assert not LogEvent.objects.filter(ts__gte=UNTIL).exists()
    assert not TraceIndexEntry.objects.filter(ts__gte=UNTIL).exists()
    # the saturation card's gauge is there, for the last minute before the boundary
    pool = MetricSample.objects.filter(metric_name=Metric.DB_POOL_CONNECTIONS_ACTIVE).aggregate(newest=Max("ts"))
    assert pool["newest"] == UNTIL - MINUTE


def test_a_later_run_seeds_only_the_rest_of_a_partly_seeded_day_and_never_a_minute_with_live_data():
    seed_history(1, LIGHT, step=timedelta(minutes=15), until=UNTIL)
    before = requests_in(DAY_START, UNTIL)
    # A live simulator ran from the boundary for 10 minutes (another instance, its own stream).
    live = Platform(LIGHT, seed=7, started_at=UNTIL, instance_id="vc-server-1-abcdef")
    for second in range(10, 601, 10):
        moment = UNTIL + timedelta(seconds=second)
        ingest(OtlpSignal.METRICS, live.step(moment, 10).metrics, now=moment)
    flush_pending(now=UNTIL + timedelta(minutes=11))
    live_minutes = request_minutes(since=UNTIL)
    live_requests = requests_in(UNTIL, UNTIL + timedelta(minutes=11))

    later = UNTIL + timedelta(minutes=40)
    report = seed_history(1, LIGHT, step=timedelta(minutes=15), until=later)

    after_live = live_minutes[-1] + MINUTE
    assert [(part.start, part.end) for part in report.days] == [(after_live, later)]
    assert requests_in(DAY_START, UNTIL) == before
    assert requests_in(UNTIL, after_live) == live_requests
    assert request_minutes(since=after_live) == [after_live + n * MINUTE for n in range(int(
        (later - after_live) / MINUTE))]
    assert seeded_until(UNTIL.date()) == later


def test_an_interrupted_seed_fills_only_the_time_before_and_after_what_it_stored():
    recent_from = UNTIL - timedelta(hours=1)
    mark(UNTIL.date(), recent_from)  # only the recent hour gets seeded ...
    seed_history(1, LIGHT, step=timedelta(minutes=15), until=UNTIL)
    with connection.cursor() as cursor:  # ... and the run stops before it marks the day
        cursor.execute("DELETE FROM telemetry_seed_days")
    assert request_minutes()[0] == recent_from
    kept = requests_in(recent_from, UNTIL)

    later = UNTIL + timedelta(minutes=5)
    report = seed_history(1, LIGHT, step=timedelta(minutes=15), until=later)

    assert [(part.start, part.end) for part in report.days] == [(DAY_START, recent_from), (UNTIL, later)]
    assert requests_in(recent_from, UNTIL) == kept
    assert request_minutes(until=recent_from) == [DAY_START + n * timedelta(minutes=15) for n in range(2)]
    assert seeded_until(UNTIL.date()) == later


def test_seeded_spans_stay_out_of_the_live_windows():
    until = datetime.now(UTC).replace(second=0, microsecond=0)
    mark(until.date(), until - timedelta(minutes=10))  # the day is seeded up to 10 minutes ago

    # At heavy, the last 5 minutes (what live windows would still count) always hold kept spans; at light they
    # sometimes held none, and then nothing was tested.
    report = seed_history(1, get_profile("heavy"), until=until)

    assert report.days[0].start == max(until - timedelta(minutes=10), until.replace(hour=0, minute=0))
    assert report.days[0].spans > 0
    assert TraceIndexEntry.objects.filter(ts__gte=until - timedelta(minutes=5)).exists()
    red = live_red()
    assert red is not None and not red.sending and red.total.requests == 0


def test_the_command_takes_the_boundary_and_refuses_one_in_the_future(capsys):
    call_command("seed_demo", "--days", "1", "--until", UNTIL.isoformat(), "--recent-minutes", "15")
    assert "up to " + UNTIL.strftime("%Y-%m-%d %H:%M") in capsys.readouterr().out
    assert request_minutes()[-1] == UNTIL - MINUTE
    with pytest.raises(CommandError, match="not in the future"):
        call_command("seed_demo", "--days", "1", "--until", (datetime.now(UTC) + timedelta(hours=1)).isoformat())


def test_days_outside_retention_are_refused():
    with pytest.raises(CommandError, match="between 1 and 30"):
        call_command("seed_demo", "--days", "31")
