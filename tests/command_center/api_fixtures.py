"""Fixtures shared by the API/selector tests (imported by those test modules)."""

from __future__ import annotations

import pytest
from django.core.cache import cache


def delete_command_center_cache_keys() -> None:
    """Forget cached summaries, probe results and audit rate limits (Redis outlives a test database)."""
    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(match="*command_center:*", count=1000):
        client.delete(key)


@pytest.fixture(autouse=True)
def fresh_command_center_cache():
    delete_command_center_cache_keys()
    yield
    delete_command_center_cache_keys()
