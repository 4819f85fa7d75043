"""The config panel: thresholds, refresh cadences, feature flags and the catalogue with golden signals."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings

from command_center.thresholds import thresholds
from telemetry.contract import CATALOGUE, RETENTION_DAYS, FeatureFlag

# Seconds between refreshes of each panel (design section 9.2); a section is stale after twice this.
REFRESH_SECONDS = {
    "summary": 5,
    "vital_signs": 5,
    "health": 10,
    "infrastructure": 10,
    "voice": 10,
    "logs": 15,
    "traces": 30,
    "trends": 30,
    "top": 30,
}
EXPORT_MAX_ROWS = 10_000
PAGE_MAX = 100
# The preset ranges of the page and the API's `range` parameter.
RANGES: Mapping[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


def feature_flags() -> dict[str, bool]:
    return {flag.value: flag.enabled for flag in FeatureFlag}


def enabled_metrics() -> frozenset[str]:
    """Catalogue metrics usable now: v1.1 metrics only while their feature flag is on."""
    flags = feature_flags()
    return frozenset(name for name, spec in CATALOGUE.items() if spec.flag is None or flags[spec.flag.value])


def config() -> dict[str, Any]:
    flags = feature_flags()
    return {
        "thresholds": {
            key: {
                "label": t.label,
                "unit": t.unit,
                "warn": t.warn,
                "crit": t.crit,
                "higher_is_worse": t.higher_is_worse,
                "env_warn": t.env_warn,
                "env_crit": t.env_crit,
            }
            for key, t in thresholds().items()
        },
        "refresh_seconds": REFRESH_SECONDS,
        "feature_flags": flags,
        "catalogue": [
            {
                "name": spec.name.value,
                "kind": spec.kind.value,
                "signal": spec.signal.value,
                "labels": [label.value for label in spec.labels],
                "flag": spec.flag.value if spec.flag else None,
                "enabled": spec.flag is None or flags[spec.flag.value],
                "description": spec.description,
            }
            for spec in CATALOGUE.values()
        ],
        "ranges": list(RANGES),
        "retention_days": RETENTION_DAYS,
        "limits": {
            "page_max": PAGE_MAX,
            "export_max_rows": EXPORT_MAX_ROWS,
            "max_range_days": RETENTION_DAYS,
        },
        "trace_slow_ms": settings.COMMAND_CENTER_TRACE_SLOW_MS,
        "db_slow_ms": settings.COMMAND_CENTER_DB_SLOW_MS,
    }
