"""Fixtures of the reliability tests, which start stacks of real processes (tests/reliability/stack.py)."""

from __future__ import annotations

import pytest

from tests.reliability.stack import running_stack


@pytest.fixture
def stack():
    """PostgreSQL, Redis and daphne of the test's own, started; workers and beat are started by the test."""
    with running_stack() as running:
        yield running
