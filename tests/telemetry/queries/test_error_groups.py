"""Error-group counts read from tiers: whole days from the day rows (a listing's cut day too, less its part
outside the window, when that part is the smaller), whole hours from the hour rows, the ragged ends (and, for
sparklines, the minutes of an hour outside its main bucket) from the minute rows. The answers are those of the minutes
alone: checked by hand across hour edges, and against occurrences summed in Python over windows and buckets
that cut hours anywhere."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from telemetry.error_groups import Occurrence, record
from telemetry.fingerprints import Fingerprint, Source
from telemetry.queries.error_groups import (
    RankedGroups,
    Ranking,
    Span,
    Tiers,
    bucket_counts,
    groups_in_window,
    ranked_groups,
    tiers,
)

pytestmark = pytest.mark.django_db

POOL = Fingerprint.of(Source.LOG, "vc-server", "db.pool", "pool exhausted (1 waiting)")
TIMEOUT = Fingerprint.of(Source.LOG, "vc-server", "voice.join", "join timed out after 5000 ms")
DAY = datetime(2026, 5, 4, tzinfo=UTC)


def at(hour: int, minute: int, second: int = 0, day: int = 0) -> datetime:
    return DAY + timedelta(days=day, hours=hour, minutes=minute, seconds=second)


def errors(fingerprint: Fingerprint, *moments: datetime) -> None:
    record([Occurrence(fingerprint, moment, "e", "m") for moment in moments])


def counts(start: datetime, end: datetime) -> dict[str, int]:
    return {group.group: group.count for group in groups_in_window(start, end)}


def test_a_window_reads_its_whole_hours_from_hour_rows_and_its_ends_from_minute_rows():
    split = tiers(at(10, 20, 30), at(13, 40))
    assert split.hours == [Span(at(11, 0), at(13, 0))]
    assert split.minutes == [Span(at(10, 20, 30), at(11, 0)), Span(at(13, 0), at(13, 40))]
    assert tiers(at(10, 20), at(10, 50)) == Tiers([], [Span(at(10, 20), at(10, 50))])  # no whole hour
    assert tiers(at(10, 20), at(11, 0), 600) == Tiers([], [  # with 10-minute buckets, one span per bucket
        Span(at(10, 20), at(10, 30)), Span(at(10, 30), at(10, 40)), Span(at(10, 40), at(10, 50)),
        Span(at(10, 50), at(11, 0))])


def test_a_listing_reads_its_whole_days_from_day_rows_and_a_sparkline_never_does():
    split = tiers(at(6, 43, 10), at(10, 0, day=3))
    # Day 0 from 6:43:10 is 17 h of hour rows, or its day row less 6 h and 43 min before the window: the latter.
    assert split.days == [Span(at(0, 0), at(0, 0, day=3))]
    assert split.hours == [Span(at(0, 0), at(6, 0), sign=-1), Span(at(0, 0, day=3), at(10, 0, day=3))]
    assert split.minutes == [Span(at(6, 0), at(6, 43, 10), sign=-1)]
    # 24 h ending at 20:15 (now, say): 3 hours of yesterday, and today's day row less what comes after 20:15.
    assert tiers(at(20, 15), at(20, 15, day=1)) == Tiers(
        [Span(at(21, 0), at(0, 0, day=1)), Span(at(21, 0, day=1), at(0, 0, day=2), sign=-1)],
        [Span(at(20, 15), at(21, 0)), Span(at(20, 15, day=1), at(21, 0, day=1), sign=-1)],
        [Span(at(0, 0, day=1), at(0, 0, day=2))])
    assert tiers(at(0, 0), at(0, 0, day=1)) == Tiers([], [], [Span(at(0, 0), at(0, 0, day=1))])
    assert tiers(at(0, 0), at(23, 0)) == Tiers(  # 23 hours of a day: its day row less the last hour
        [Span(at(23, 0), at(0, 0, day=1), sign=-1)], [], [Span(at(0, 0), at(0, 0, day=1))])
    assert tiers(at(0, 0), at(11, 0)).days == []  # 11 hours: hour rows
    assert tiers(at(0, 0), at(0, 0, day=3), 6 * 3600).days == []  # buckets: hours at most


def test_a_sparkline_hour_cut_by_buckets_counts_whole_in_its_middles_bucket_and_moves_the_rest():
    # 48-minute buckets from 10:12: 10:12, 11:00, 11:48, 12:36 ... 11:00-12:00 holds 11:00-11:48 (48 min, with
    # the middle 11:30) and 11:48-12:00 (12 min): the hour row counts at 11:30, 11:48-11:59 move out of there.
    split = tiers(at(10, 12), at(12, 36), 48 * 60)
    assert split.hours == [Span(at(11, 0), at(12, 0))]
    assert split.minutes == [Span(at(10, 12), at(11, 0)), Span(at(11, 48), at(12, 0), at(11, 30)),
                             Span(at(12, 0), at(12, 36))]
    # Buckets of 20 minutes: no bucket holds half an hour, every hour is read from its minutes.
    split = tiers(at(10, 0), at(12, 0), 20 * 60)
    assert split.hours == [] and [span.low for span in split.minutes] == [at(10 + n // 3, n % 3 * 20) for n in range(6)]
    # Whole hours are one range scan, whatever their buckets.
    assert tiers(at(10, 0), at(16, 0), 3 * 3600) == Tiers([Span(at(10, 0), at(16, 0))], [])


def test_counts_across_hour_edges_by_hand():
    errors(POOL, at(10, 19, 59), at(10, 20), at(10, 59), at(11, 0), at(11, 0), at(12, 30), at(12, 59, 59),
           at(13, 0), at(13, 39), at(13, 40))
    errors(TIMEOUT, at(11, 59), at(13, 39, 30))
    # [10:20, 13:40): POOL's 10:20 .. 13:39 (8; 10:19:59 and 13:40 are outside), TIMEOUT's two.
    assert counts(at(10, 20), at(13, 40)) == {POOL.as_hex: 8, TIMEOUT.as_hex: 2}
    # Minutes are dated by their start: 10:20:30 starts after the 10:20 minute, 13:40:30 takes the 13:40 one.
    assert counts(at(10, 20, 30), at(13, 40, 30)) == {POOL.as_hex: 8, TIMEOUT.as_hex: 2}
    # Whole hours only, and a window inside one hour.
    assert counts(at(11, 0), at(13, 0)) == {POOL.as_hex: 4, TIMEOUT.as_hex: 1}
    assert counts(at(12, 30), at(12, 59)) == {POOL.as_hex: 1}


def test_sparkline_buckets_across_hour_edges_by_hand():
    errors(POOL, at(10, 12), at(10, 59), at(11, 0), at(11, 47), at(11, 48), at(11, 59), at(12, 0), at(12, 35),
           at(12, 36))
    # Buckets of 48 min from 10:12: [10:12, 11:00) 2, [11:00, 11:48) 2, [11:48, 12:36) 4; 12:36 is outside.
    assert bucket_counts([POOL.as_hex, TIMEOUT.as_hex], at(10, 12), at(12, 36), 48 * 60) == {
        POOL.as_hex: [2, 2, 4], TIMEOUT.as_hex: [0, 0, 0]}


def minute_only(occurrences: list[tuple[Fingerprint, datetime]], start: datetime, end: datetime,
                step: timedelta) -> dict[str, list[int]]:
    """The answer of the minute rows alone, from the occurrences themselves: minute starts in [start, end)."""
    buckets = -(-(end - start) // step)
    found = {fingerprint.as_hex: [0] * buckets for fingerprint in (POOL, TIMEOUT)}
    for fingerprint, moment in occurrences:
        minute = moment.replace(second=0, microsecond=0)
        if start <= minute < end:
            found[fingerprint.as_hex][(minute - start) // step] += 1
    return found


def test_any_window_and_bucket_width_gives_what_the_minutes_alone_give():
    generator = random.Random(16)
    occurrences = [(generator.choice((POOL, TIMEOUT)), DAY + timedelta(seconds=generator.randrange(9 * 86400)))
                   for _ in range(3000)]
    for fingerprint in (POOL, TIMEOUT):
        errors(fingerprint, *(moment for owner, moment in occurrences if owner == fingerprint))
    windows = [(at(0, 0, day=1), at(0, 0, day=8)), (at(6, 43, 10, day=1), at(6, 43, 10, day=8)),
               (at(6, 43, 10, day=7), at(6, 43, 10, day=8)), (at(3, 59), at(5, 1)), (at(2, 17, 40), at(2, 18)),
               # 24 h ending 20:15: its last day is read as the day row less the errors after the window (stored)
               (at(20, 15, day=1), at(20, 15, day=2)), (at(0, 30, day=3), at(23, 20, 5, day=3))]
    for start, end in windows:
        for step_minutes in (1, 7, 30, 48, 60, 75, 336, 24 * 60):
            step = timedelta(minutes=step_minutes)
            expected = minute_only(occurrences, start, end, step)
            assert bucket_counts([POOL.as_hex, TIMEOUT.as_hex], start, end, int(step.total_seconds())) == expected
        in_window = Counter(fingerprint.as_hex for fingerprint, moment in occurrences
                            if start <= moment.replace(second=0, microsecond=0) < end)
        assert counts(start, end) == dict(in_window)


def test_a_ranking_puts_new_groups_first_then_most_errors_and_carries_totals_and_the_shown_sparklines():
    worker = Fingerprint.of(Source.LOG, "vc-worker", "job.failed", "job 7 failed")
    errors(POOL, at(9, 0), at(10, 5), at(10, 6), at(10, 7))  # 3 in the window, first seen 9:00
    errors(TIMEOUT, at(10, 20), at(10, 21))  # 2, first seen 10:20
    errors(worker, at(8, 0), at(10, 30))  # 1, first seen 8:00, after its service's deploy at 7:00
    start, end, step = at(10, 0), at(11, 0), 20 * 60

    ranking = Ranking(new_since=at(10, 0))
    ranked = ranked_groups(start, end, 2, ranking, step_seconds=step)
    assert [group.group for group in ranked.groups] == [TIMEOUT.as_hex, POOL.as_hex]  # new first, then by count
    assert (ranked.total, ranked.new_total) == (3, 1)
    assert ranked.sparklines == {TIMEOUT.as_hex: [0, 2, 0], POOL.as_hex: [3, 0, 0]}
    assert ranked.sparklines == bucket_counts([TIMEOUT.as_hex, POOL.as_hex], start, end, step)

    deployed = Ranking(new_since=at(10, 0), deployed_at={"vc-worker": at(7, 0)}, new_only=True)
    ranked = ranked_groups(start, end, 10, deployed)
    assert [group.group for group in ranked.groups] == [TIMEOUT.as_hex, worker.as_hex]  # 2 errors, then 1
    assert (ranked.total, ranked.new_total, ranked.sparklines) == (2, 2, {})
    assert ranked_groups(start, end, 10, ranking, service="vc-worker").groups[0].count == 1
    assert ranked_groups(at(12, 0), at(13, 0), 10, ranking, step_seconds=step) == RankedGroups([], 0, 0, {})
