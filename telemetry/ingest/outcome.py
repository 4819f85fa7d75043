"""What happened to the items of one export request: accepted, not kept, rejected (and why)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from telemetry.contract import MAX_FUTURE_SKEW, RETENTION_DAYS
from telemetry.otlp import OtlpSignal

_ITEM_NOUNS = {OtlpSignal.METRICS: "data points", OtlpSignal.LOGS: "log records", OtlpSignal.TRACES: "spans"}
_NANOS_PER_SECOND = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

REASON_TOO_OLD = f"timestamp older than the {RETENTION_DAYS}-day retention window"
REASON_IN_FUTURE = f"timestamp more than {int(MAX_FUTURE_SKEW.total_seconds() // 60)} minutes in the future"
REASON_NO_TIMESTAMP = "no timestamp"


@dataclass
class IngestOutcome:
    """Counts for one request. `accepted` items passed the contract (stored or, like INFO logs and
    unselected spans, deliberately not kept natively: `not_kept`); rejected ones are counted by reason.
    `forbidden_dropped` counts forbidden attribute keys removed from the items (never their values)."""

    signal: OtlpSignal
    accepted: int = 0
    not_kept: int = 0
    stored: int = 0
    forbidden_dropped: int = 0
    rejections: Counter[str] = field(default_factory=Counter)

    @property
    def rejected(self) -> int:
        return sum(self.rejections.values())

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejections[reason] += count

    def reject_accepted(self, reason: str, count: int = 1) -> None:
        """Reject items already counted as accepted: a check that needs stored state (a cumulative point's
        stream) comes after the contract's."""
        self.accepted -= count
        self.reject(reason, count)

    def error_message(self) -> str:
        """English summary for `partial_success.error_message`; empty when nothing was rejected."""
        if not self.rejections:
            return ""
        reasons = ", ".join(f"{reason} ({count})" for reason, count in self.rejections.most_common())
        return f"{self.rejected} {_ITEM_NOUNS[self.signal]} rejected: {reasons}"


@dataclass(frozen=True)
class TimeWindow:
    """The timestamps (Unix nanoseconds) the receiver accepts: inside retention, not too far ahead."""

    oldest_ns: int
    newest_ns: int

    @classmethod
    def around(cls, now: datetime) -> TimeWindow:
        return cls(
            oldest_ns=to_unix_nanos(now - timedelta(days=RETENTION_DAYS)),
            newest_ns=to_unix_nanos(now + MAX_FUTURE_SKEW),
        )

    def refusal(self, time_ns: int) -> str | None:
        """Why a timestamp is refused, or None when it is accepted."""
        if time_ns <= 0:
            return REASON_NO_TIMESTAMP
        if time_ns < self.oldest_ns:
            return REASON_TOO_OLD
        if time_ns > self.newest_ns:
            return REASON_IN_FUTURE
        return None


def to_unix_nanos(moment: datetime) -> int:
    # Integer arithmetic: a float timestamp would lose the nanoseconds.
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _NANOS_PER_SECOND + delta.microseconds * 1_000


def from_unix_nanos(time_ns: int) -> datetime:
    seconds, nanos = divmod(time_ns, _NANOS_PER_SECOND)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1_000)
