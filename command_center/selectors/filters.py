"""Choices the page's list filters offer."""

from __future__ import annotations

from django.utils import timezone

from telemetry.queries.domains import Domains, domains


def filter_domains() -> Domains:
    """The domain choices of the Logs and Traces filters: the contract's and the data's of the last day."""
    return domains(timezone.now())
