"""Voice measurements and sessions as the read side asks for them: percentiles, bins, the worst sessions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from telemetry.queries import voice
from tests.factories import ConnectionMetricFactory, ConnectionSessionFactory

START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)  # on a 15-minute bin
END = START + timedelta(minutes=30)
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_quality_p95_reads_the_measurements_of_the_window_only():
    for loss in range(1, 21):  # 1..20 %: p95 (linear interpolation) is 19.05
        ConnectionMetricFactory(ts=START + timedelta(seconds=loss), packet_loss=float(loss), jitter_ms=loss)
    ConnectionMetricFactory(ts=END, packet_loss=99.0)

    loss, jitter, newest = voice.quality_p95(START, END)

    assert loss == pytest.approx(19.05) and jitter == pytest.approx(19.05)
    assert newest == START + timedelta(seconds=20)


@pytest.mark.django_db
def test_quality_bins_count_each_quality_score_per_step():
    ConnectionMetricFactory(ts=START + timedelta(minutes=1), quality=0)
    ConnectionMetricFactory(ts=START + timedelta(minutes=2), quality=3)
    ConnectionMetricFactory(ts=START + timedelta(minutes=16), quality=3)

    bins = voice.quality_bins(START, END, 900, ORIGIN)

    assert sorted(bins) == [START, START + timedelta(minutes=15)]
    assert bins[START][4:8] == (1, 0, 0, 1)


@pytest.mark.django_db
@pytest.mark.parametrize("rank_by", list(voice.RANK_COLUMNS))
def test_worst_sessions_rank_by_their_own_p95_and_carry_their_session_rows(rank_by):
    bad, good, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ConnectionSessionFactory(id=bad, started_at=START - timedelta(minutes=5), ended_at=None, outcome=None)
    ConnectionSessionFactory(id=good, started_at=START - timedelta(minutes=5), ended_at=END, outcome="normal")
    for minute in range(3):
        ConnectionMetricFactory(ts=START + timedelta(minutes=minute), session_id=bad, packet_loss=9.0, jitter_ms=90,
                                latency_ms=900, quality=0)
        ConnectionMetricFactory(ts=START + timedelta(minutes=minute), session_id=good)
        ConnectionMetricFactory(ts=START + timedelta(minutes=minute), session_id=unknown, packet_loss=0.1,
                                jitter_ms=1, latency_ms=10)

    ranked, timelines, sessions = voice.worst_sessions(START, END, 60, ORIGIN, rank_by, limit=2)

    assert [row[0] for row in ranked] == [bad, good]
    assert ranked[0][4:6] == (0, 3) and len(timelines[bad]) == 3
    assert sessions[bad] == (START - timedelta(minutes=5), None, None) and unknown not in sessions
