"""The domains the filters offer: the contract's, and those the data of the last day actually carries.

A span's domain is whatever the platform declared (`kaiku.domain`, lower-cased), `api` or `db` without one,
so a list written by hand misses some (`api` was missing): the spans' are read from the hourly span aggregates
(one row per hour, service, domain and route; never a chunk). A log's domain is always one of the contract's
or "other" (`contract.canonical_log_domain`), so the logs' list needs no read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections

from kaiku_ops.db_routers import read_alias
from telemetry.contract import LOG_DOMAIN_OTHER, LOG_DOMAINS
from telemetry.ingest.traces import DOMAIN_API, DOMAIN_DB
from telemetry.span_aggregates import HOURS_TABLE

SEEN_WITHIN = timedelta(days=1)


@dataclass(frozen=True)
class Domains:
    logs: list[str]
    spans: list[str]


def domains(now: datetime) -> Domains:
    since = now - SEEN_WITHIN
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT domain FROM {HOURS_TABLE} WHERE hour >= %s", [since.replace(minute=0)])
        span_domains = {row[0] for row in cursor.fetchall()}
    contract = set(LOG_DOMAINS)
    return Domains(
        logs=[*LOG_DOMAINS, LOG_DOMAIN_OTHER],
        spans=sorted(contract | {DOMAIN_API, DOMAIN_DB} | span_domains),
    )
