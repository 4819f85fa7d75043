"""One definition per number (issue 12, item 5): the voice tab, the voice pulse, the Voice SFU probe, the alerts
and the trend charts show the same join success, active rooms, participants and crash rate for the same window.

The data goes through the real ingest path: OTLP export requests shaped like the SFU's (cumulative counters, a
cumulative participants histogram recording every room at every 10-second export, gauges) are ingested and the
buffer flushed into minute samples, as the receiver and its beat task do.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from command_center import probes, push
from command_center.selectors import alerts, metrics, voice
from command_center.thresholds import Status, status_for, thresholds
from telemetry.contract import Label, Metric
from telemetry.ingest import buffer, cardinality
from telemetry.ingest.pipeline import ingest
from telemetry.otlp import OtlpSignal
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.telemetry.ingest.otlp_builders import counter, gauge, histogram, metrics_request, ns

pytestmark = pytest.mark.django_db

BOUNDS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 25.0, 50.0]  # the simulator's room bounds
EXPORT_EVERY = timedelta(seconds=10)
ROOMS_BEFORE = [2, 2, 3, 4, 4, 5, 6, 9, 12, 30]  # 10 rooms until the current minute
ROOMS_NOW = [1, 2, 2, 3, 3, 4, 4, 5, 6, 8, 12]  # 11 rooms during the current minute


@dataclass
class Sfu:
    """The cumulative instruments of one SFU process and what it exported when."""

    start: datetime
    joins: dict[str, int] = field(default_factory=lambda: {"success": 0, "error": 0})
    ended: dict[str, int] = field(default_factory=lambda: {"normal": 0, "crash": 0})
    rtp: int = 0
    room_counts: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))
    room_sum: float = 0.0
    events: list[tuple[datetime, str, str, int]] = field(default_factory=list)  # (at, metric key, outcome, n)

    def export(self, at: datetime, now: datetime, joins=(0, 0), ended=(0, 0), rooms: list[int] | None = None):
        for (outcome, added) in zip(("success", "error"), joins, strict=True):
            self.joins[outcome] += added
            self.events.append((at, "joins", outcome, added))
        for (outcome, added) in zip(("normal", "crash"), ended, strict=True):
            self.ended[outcome] += added
            self.events.append((at, "ended", outcome, added))
        start_ns, at_ns = ns(self.start), ns(at)
        sent = [
            counter(Metric.VOICE_JOINS_TOTAL,
                    [(start_ns, at_ns, value, {Label.OUTCOME: key}) for key, value in self.joins.items()]),
            counter(Metric.VOICE_SESSIONS_ENDED_TOTAL,
                    [(start_ns, at_ns, value, {Label.OUTCOME: key}) for key, value in self.ended.items()]),
        ]
        if rooms is not None:
            # What the SFU does at every export: each active room's size into the histogram, then the gauges.
            for size in rooms:
                self.room_counts[bisect_left(BOUNDS, size)] += 1
                self.room_sum += size
            self.rtp += 50 * sum(size * (size - 1) for size in rooms) * 10
            sent += [
                histogram(Metric.VOICE_ROOM_PARTICIPANTS,
                          [(start_ns, at_ns, BOUNDS, list(self.room_counts), self.room_sum, {})]),
                gauge(Metric.VOICE_ROOMS_ACTIVE, [(at_ns, float(len(rooms)), {})]),
                gauge(Metric.VOICE_SESSIONS_ACTIVE, [(at_ns, float(sum(rooms)), {})]),
                counter(Metric.VOICE_RTP_PACKETS_FORWARDED_TOTAL, [(start_ns, at_ns, self.rtp, {})]),
            ]
        ingest(OtlpSignal.METRICS, metrics_request(*sent, service="vc-sfu"), now=now)

    def share(self, key: str, outcome: str, since: datetime) -> float:
        """The expected share in percent of the events exported at or after `since` (all in whole minutes)."""
        events = [event for event in self.events if event[1] == key and event[0] >= since]
        return 100.0 * sum(n for *_, o, n in events if o == outcome) / sum(n for *_, n in events)


@pytest.fixture
def now(freeze_now):
    """Half a minute into the current minute, frozen for every selector and for the API's window parsing."""
    return freeze_now(timezone.now().replace(second=30, microsecond=0))


@pytest.fixture
def sfu(now):
    """20 hours of a voice platform: a good day, a worse last hour, and 10-second exports in the last minutes."""
    cardinality.forget_known_series()
    minute = now.replace(second=0)
    platform = Sfu(start=now - timedelta(hours=21))
    platform.export(now - timedelta(hours=20), now)  # the streams start at zero
    platform.export(minute - timedelta(hours=10, seconds=-15), now, joins=(990, 10), ended=(990, 2))
    platform.export(minute - timedelta(hours=2, seconds=-15), now, joins=(500, 5), ended=(400, 1))
    platform.export(minute - timedelta(minutes=50, seconds=-15), now, joins=(200, 25), ended=(50, 3))
    platform.export(minute - timedelta(minutes=20, seconds=-15), now, joins=(100, 10), ended=(40, 1))
    at = minute - timedelta(minutes=2) + timedelta(seconds=5)
    while at < now:
        # Two minutes of ROOMS_BEFORE, then the current minute (three exports so far) of ROOMS_NOW.
        rooms = ROOMS_NOW if at >= minute else ROOMS_BEFORE
        platform.export(at, now, joins=(2, 1), ended=(1, 0), rooms=rooms)
        at += EXPORT_EVERY
    buffer.flush_pending(now=now, include_open_minute=True)
    cardinality.forget_known_series()
    return platform


def _trend(client, metric: str, range_: str, **extra) -> dict:
    return client.get(reverse("observability:trends"), {"metric": metric, "range": range_, **extra}).json()


def _last(values: list) -> object:
    return next(value for value in reversed(values) if value is not None)


def test_every_place_shows_the_same_join_success_crash_rate_rooms_and_participants(client, superuser, now, sfu):
    client.force_login(superuser)
    tab = client.get(reverse("observability:voice-summary")).json()
    pulse = voice.voice_pulse()
    pushed = push.voice_pulse(pulse)
    state, detail = probes.probe_voice_sfu(now)
    signals = alerts.signal_values(now)
    joins_1h = _trend(client, Metric.VOICE_JOINS_TOTAL, "1h", group_by=Label.OUTCOME)
    joins_24h = _trend(client, Metric.VOICE_JOINS_TOTAL, "24h", group_by=Label.OUTCOME)
    crashes_1h = _trend(client, Metric.VOICE_SESSIONS_ENDED_TOTAL, "1h")
    crashes_24h = _trend(client, Metric.VOICE_SESSIONS_ENDED_TOTAL, "24h")
    rooms_chart = _trend(client, Metric.VOICE_ROOMS_ACTIVE, "1h")
    participants_chart = _trend(client, Metric.VOICE_ROOM_PARTICIPANTS, "1h")

    # Active rooms: the gauge of the newest minute, the same in the tab, the push, the probe and the chart.
    assert tab["active_rooms"] == pulse["active_rooms"] == pushed["active_rooms"] == len(ROOMS_NOW)
    assert f"active rooms {len(ROOMS_NOW)};" in detail
    assert _last(rooms_chart["series"][0]["values"]["value"]) == len(ROOMS_NOW)
    assert tab["active_sessions"] == pulse["active_sessions"] == sum(ROOMS_NOW)

    # Participants per room: the rooms of that same minute, adding up to the active rooms (not 3 × 11 room-exports).
    assert sum(bucket["count"] for bucket in tab["participants_per_room"]) == tab["active_rooms"]
    participants = tab["figures"]["participants_per_room"]
    assert [bucket["count"] for bucket in tab["participants_per_room"]] == [1, 2, 2, 2, 1, 1, 1, 0, 1, 0, 0, 0, 0]
    assert participants["rooms"] == tab["active_rooms"]
    assert participants["as_of"] == tab["figures"]["active_rooms"]["as_of"]
    assert participants["p50"] == pytest.approx(_last(participants_chart["series"][0]["values"]["p50"]))
    assert participants["p95"] == pytest.approx(_last(participants_chart["series"][0]["values"]["p95"]))

    # Join success over 1 h: pulse, push, tab, health score, alert, probe state and the 1 h chart's window.
    join_1h = sfu.share("joins", "success", now - timedelta(hours=1))
    assert tab["join_success_rate_1h"] == pytest.approx(join_1h)
    assert pulse["join_success_rate_1h"] == pushed["join_success_rate_1h"] == pytest.approx(join_1h)
    assert tab["health_score"]["components"]["voice_join_success_pct"]["value"] == pytest.approx(join_1h)
    assert signals["voice_join_success_pct"] == pytest.approx(join_1h)
    assert joins_1h["ratio"]["value"] == pytest.approx(join_1h)
    # The probe colours the same figure: yellow over the hour (89 %) while the day is green (97 %).
    join_status = status_for(join_1h, thresholds()["voice_join_success_pct"])
    assert join_status == Status.YELLOW
    assert (state == probes.State.DEGRADED) == (join_status != Status.GREEN)
    shown = re.search(r"join success (\d+\.\d)% \((.+?)\)", detail)
    if shown:  # once the probe names the figure (voice.join_success(...).text())
        assert (float(shown[1]), shown[2]) == (pytest.approx(join_1h, abs=0.05), "1 h")

    # ... and over 24 h: the tab's day figure and the 24 h chart's window.
    join_24h = sfu.share("joins", "success", now - timedelta(hours=24))
    assert tab["join_success_rate_24h"] == pytest.approx(join_24h) == joins_24h["ratio"]["value"]
    assert status_for(join_24h, thresholds()["voice_join_success_pct"]) == Status.GREEN

    # Crash rate, both windows, the same way.
    crash_1h = sfu.share("ended", "crash", now - timedelta(hours=1))
    crash_24h = sfu.share("ended", "crash", now - timedelta(hours=24))
    assert tab["crash_rate_1h"] == pytest.approx(crash_1h) == crashes_1h["ratio"]["value"]
    assert signals["voice_crash_rate_pct"] == pytest.approx(crash_1h)
    assert tab["health_score"]["components"]["voice_crash_rate_pct"]["value"] == pytest.approx(crash_1h)
    assert tab["crash_rate_24h"] == pytest.approx(crash_24h) == crashes_24h["ratio"]["value"]

    # Each value carries its window.
    figures = tab["figures"]
    for key, seconds, label in (("join_success_rate_1h", 3600, "1 h"), ("join_success_rate_24h", 86400, "24 h"),
                                ("crash_rate_1h", 3600, "1 h"), ("crash_rate_24h", 86400, "24 h")):
        assert (figures[key]["value"], figures[key]["window_seconds"], figures[key]["window_label"]) == (
            pytest.approx(tab[key]), seconds, label)
    assert (tab["health_score"]["window_seconds"], tab["health_score"]["window_label"]) == (3600, "1 h")
    assert pulse["figures"]["join_success_rate_1h"]["window_label"] == "1 h"
    assert figures["active_rooms"]["window_label"] == pulse["figures"]["active_rooms"]["window_label"]
    assert (joins_1h["ratio"]["window_label"], joins_24h["ratio"]["window_label"]) == ("1 h", "24 h")


def test_the_join_success_chart_adds_counts_per_bin_and_over_its_window(client, superuser, now, sfu):
    client.force_login(superuser)
    body = _trend(client, Metric.VOICE_JOINS_TOTAL, "1h", group_by=Label.OUTCOME)
    ratio, timestamps = body["ratio"], body["timestamps"]
    assert len(ratio["values"]) == len(ratio["parts"]) == len(ratio["wholes"]) == len(timestamps)
    for value, part, whole in zip(ratio["values"], ratio["parts"], ratio["wholes"], strict=True):
        assert value == (pytest.approx(100 * part / whole) if whole else None)
    # The ratio over the window is of the summed counts: the mean of the per-bin percentages is another number.
    assert ratio["value"] == pytest.approx(100 * sum(ratio["parts"]) / sum(ratio["wholes"]))
    per_bin = [value for value in ratio["values"] if value is not None]
    assert sum(per_bin) / len(per_bin) != pytest.approx(ratio["value"], abs=0.5)
    # The chart's newest bin (the current minute so far: 6 of 9 joins) is not the window's figure either.
    assert _last(ratio["values"]) == pytest.approx(100 * 6 / 9)
    assert ratio["value"] == pytest.approx(voice.join_success(timedelta(hours=1), now).value)


def test_a_bin_of_two_minutes_is_the_ratio_of_its_sums(now):
    """One 120-second bin holding a minute at 1/2 and a minute at 99/100: 100/102, not (50 + 99) / 2."""
    minute = now.replace(second=0) - timedelta(minutes=30)
    first = minute - timedelta(seconds=(minute.timestamp() % 120))  # the start of a 120-second bin
    platform = Sfu(start=now - timedelta(hours=2))
    cardinality.forget_known_series()
    platform.export(now - timedelta(hours=1, minutes=30), now)
    platform.export(first + timedelta(seconds=10), now, joins=(1, 1))
    platform.export(first + timedelta(seconds=70), now, joins=(99, 1))
    buffer.flush_pending(now=now, include_open_minute=True)

    series = voice.share_series(voice.JOIN_SUCCESS, now - timedelta(hours=24), now, 120)
    index = metrics.bins(now - timedelta(hours=24), now, 120).index(first)
    assert series["values"][index] == pytest.approx(100 * 100 / 102)
    assert series["value"] == pytest.approx(100 * 100 / 102)
    assert voice.join_success(timedelta(hours=24), now).value == pytest.approx(series["value"])


@pytest.mark.parametrize(("seconds", "label"), [(3600, "1 h"), (86400, "24 h"), (7 * 86400, "7 d"),
                                                (300, "5 min"), (5400, "90 min"), (45, "45 s")])
def test_window_labels(seconds, label):
    assert metrics.window_label(seconds) == label


@pytest.mark.parametrize(("counts", "rooms", "expected"), [
    ([6, 12, 0, 48], 11, [1, 2, 0, 8]),  # six exports of the same 11 rooms: exactly one export
    ([5, 5, 5], 4, [2, 1, 1]),  # a mix that does not divide: whole rooms, the tie to the lower bucket
    ([0, 0], 3, [0, 0]),
    ([3, 1], 0, [0, 0]),
])
def test_the_minute_mix_is_shared_out_in_whole_rooms(counts, rooms, expected):
    assert voice._apportion(counts, rooms) == expected
    assert sum(voice._apportion(counts, rooms)) == (rooms if sum(counts) else 0)
