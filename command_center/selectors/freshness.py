"""Freshness of a panel section: its `updated_at` and whether it is stale (older than 2× its cadence)."""

from __future__ import annotations

from datetime import datetime, timedelta

# Metric samples cover one minute each, so data built from them refreshes once a minute at best.
SAMPLE_SECONDS = 60
SAMPLE = timedelta(seconds=SAMPLE_SECONDS)


def freshness(updated_at: datetime | None, cadence_seconds: int, now: datetime) -> dict:
    stale = updated_at is None or now - updated_at > timedelta(seconds=2 * cadence_seconds)
    return {"updated_at": updated_at, "stale": stale}


def sample_freshness(newest_sample_ts: datetime | None, cadence_seconds: int, now: datetime) -> dict:
    """Freshness of data built from metric samples: a sample is current until its minute ends."""
    updated_at = newest_sample_ts + SAMPLE if newest_sample_ts else None
    return freshness(updated_at, max(cadence_seconds, SAMPLE_SECONDS), now)


def newest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None
