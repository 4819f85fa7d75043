"""The domains the Logs and Traces filters offer: the contract's, and the spans' own of the last day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from telemetry.contract import LOG_DOMAINS
from telemetry.queries.domains import domains
from tests.factories import TraceIndexEntryFactory

pytestmark = pytest.mark.django_db


def test_without_data_the_contract_s_domains_and_api_and_db_are_offered():
    offered = domains(timezone.now())

    assert offered.logs == [*LOG_DOMAINS, "other"]
    assert set(offered.spans) == {*LOG_DOMAINS, "api", "db"}
    assert offered.spans == sorted(offered.spans)


def test_a_domain_a_span_declared_in_the_last_day_is_offered_and_an_older_one_is_not():
    now = timezone.now()
    TraceIndexEntryFactory(domain="billing", ts=now - timedelta(minutes=5))
    TraceIndexEntryFactory(domain="search", ts=now - timedelta(days=2))

    spans = domains(now).spans

    assert "billing" in spans
    assert "search" not in spans
