"""Voice sessions of the simulated SFU and the quality rows the platform database holds for them.

Rows are plain dicts shaped like contract section 9 (`connection_sessions`, `connection_metrics`).
A session appears in `sessions` when it starts (ended_at and outcome None) and again, same id and
started_at, when it ends, so a consumer upserts on (id, started_at).
"""

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from telemetry.simulator.distributions import poisson

MEAN_SESSION_SECONDS = 1200.0
PARTICIPANTS_PER_ROOM = 4
RTP_PACKETS_PER_SECOND_PER_STREAM = 50
_CATCH_UP_SECONDS = 300.0


@dataclass
class _Session:
    id: uuid.UUID
    room: int
    started_at: datetime
    ends_at: datetime
    next_sample_at: datetime
    loss_pct: float
    jitter_ms: float
    latency_ms: float


@dataclass
class VoiceStep:
    """What happened in one step; counts feed the voice metrics."""

    sessions: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    joins_succeeded: int = 0
    joins_failed: int = 0
    ended_normal: int = 0
    ended_crash: int = 0
    ended_durations: list[float] = field(default_factory=list)
    rtp_packets_forwarded: int = 0


@dataclass(frozen=True)
class VoiceConditions:
    target_sessions: float
    join_failure_ratio: float
    crash_ratio: float
    packet_loss_pct: float | None  # forced median loss during an incident, else each session's own


class VoiceModel:
    def __init__(self, rng: random.Random, sample_interval: timedelta) -> None:
        self._rng = rng
        self._sample_interval = sample_interval
        self._active: dict[uuid.UUID, _Session] = {}

    @property
    def active_sessions(self) -> int:
        return len(self._active)

    def room_sizes(self) -> list[int]:
        sizes: dict[int, int] = {}
        for session in self._active.values():
            sizes[session.room] = sizes.get(session.room, 0) + 1
        return list(sizes.values())

    def populate(self, at: datetime, conditions: VoiceConditions, result: VoiceStep) -> None:
        """Sessions already in progress when the simulation starts (ages spread like a steady state)."""
        rng = self._rng
        for _ in range(round(conditions.target_sessions)):
            # Exponential durations are memoryless: age and remaining time are independent draws.
            age = timedelta(seconds=rng.expovariate(1 / MEAN_SESSION_SECONDS))
            remaining = timedelta(seconds=rng.expovariate(1 / MEAN_SESSION_SECONDS))
            first_sample = at + self._sample_interval * rng.random()
            self._start(at - age, at + remaining, first_sample, conditions, result)

    def advance(self, start: datetime, end: datetime, conditions: VoiceConditions) -> VoiceStep:
        rng, result = self._rng, VoiceStep()
        seconds = (end - start).total_seconds()
        shortfall = conditions.target_sessions - len(self._active)
        arrival_rate = max(
            0.0, conditions.target_sessions / MEAN_SESSION_SECONDS + shortfall / _CATCH_UP_SECONDS
        )
        for _ in range(poisson(rng, arrival_rate * seconds)):
            if rng.random() < conditions.join_failure_ratio:
                result.joins_failed += 1
                continue
            result.joins_succeeded += 1
            started_at = start + timedelta(seconds=rng.random() * seconds)
            duration = timedelta(seconds=max(5.0, rng.expovariate(1 / MEAN_SESSION_SECONDS)))
            first_sample_at = started_at + self._sample_interval
            self._start(started_at, started_at + duration, first_sample_at, conditions, result)

        for session in list(self._active.values()):
            self._sample(session, end, conditions, result)
            if session.ends_at <= end:
                self._end(session, conditions, result)
        # The SFU forwards each participant's stream to every other participant of the room.
        streams = sum(size * (size - 1) for size in self.room_sizes())
        result.rtp_packets_forwarded = round(streams * RTP_PACKETS_PER_SECOND_PER_STREAM * seconds)
        return result

    def _start(
        self,
        started_at: datetime,
        ends_at: datetime,
        first_sample_at: datetime,
        conditions: VoiceConditions,
        result: VoiceStep,
    ) -> None:
        rng = self._rng
        rooms = max(1, math.ceil(conditions.target_sessions / PARTICIPANTS_PER_ROOM))
        session = _Session(
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            room=rng.randrange(rooms),
            started_at=started_at,
            ends_at=ends_at,
            next_sample_at=first_sample_at,
            loss_pct=rng.lognormvariate(math.log(0.3), 0.9),
            jitter_ms=rng.lognormvariate(math.log(8), 0.6),
            latency_ms=rng.lognormvariate(math.log(45), 0.5),
        )
        self._active[session.id] = session
        result.sessions.append(_session_row(session, ended_at=None, outcome=None))

    def _sample(
        self, session: _Session, until: datetime, conditions: VoiceConditions, result: VoiceStep
    ) -> None:
        rng = self._rng
        degraded = conditions.packet_loss_pct is not None
        base_loss = conditions.packet_loss_pct if degraded else session.loss_pct
        last = min(until, session.ends_at)
        while session.next_sample_at <= last:
            loss = min(100.0, base_loss * rng.lognormvariate(0, 0.3))
            jitter = session.jitter_ms * rng.lognormvariate(0, 0.3) * (3 if degraded else 1)
            latency = session.latency_ms * rng.lognormvariate(0, 0.2)
            result.metrics.append({
                "ts": session.next_sample_at,
                "session_id": session.id,
                "latency_ms": round(latency),
                "packet_loss": round(loss, 3),
                "jitter_ms": round(jitter),
                "quality": quality_score(loss, jitter, latency),
            })
            session.next_sample_at += self._sample_interval

    def _end(self, session: _Session, conditions: VoiceConditions, result: VoiceStep) -> None:
        crashed = self._rng.random() < conditions.crash_ratio
        if crashed:
            result.ended_crash += 1
        else:
            result.ended_normal += 1
        result.ended_durations.append((session.ends_at - session.started_at).total_seconds())
        result.sessions.append(
            _session_row(session, ended_at=session.ends_at, outcome="crash" if crashed else "normal")
        )
        del self._active[session.id]


def quality_score(packet_loss_pct: float, jitter_ms: float, latency_ms: float) -> int:
    """0 poor, 1 fair, 2 good, 3 excellent (the platform's own banding)."""
    if packet_loss_pct < 1 and jitter_ms < 20 and latency_ms < 100:
        return 3
    if packet_loss_pct < 2.5 and jitter_ms < 40 and latency_ms < 200:
        return 2
    if packet_loss_pct < 5 and jitter_ms < 80 and latency_ms < 400:
        return 1
    return 0


def _session_row(session: _Session, ended_at: datetime | None, outcome: str | None) -> dict:
    return {"id": session.id, "started_at": session.started_at, "ended_at": ended_at, "outcome": outcome}
