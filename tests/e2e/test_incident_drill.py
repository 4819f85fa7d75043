"""The incident drill: real daphne, worker and beat, a platform exporting as the OpenTelemetry SDK does by
default, and an operator watching the overview. The Command Center's promise is to say "something is wrong"
within 15 s of an incident, and to stop saying it soon after the incident ends."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from bench.incident_drill import Operator, SdkLikePlatform, all_green, run_incident
from tests.reliability.stack import INGEST_TOKEN, Stack

DETECTION_GOAL_S = 15
RECOVERY_GOAL_S = 90


@pytest.fixture
def running_stack():
    with tempfile.TemporaryDirectory(prefix="kaiku-drill-") as data_dir:
        stack = Stack(Path(data_dir)).start()
        stack.start_worker()
        stack.start_beat()
        try:
            yield stack
        finally:
            stack.stop()


@pytest.mark.e2e
@pytest.mark.slow
def test_an_incident_turns_the_overview_red_within_15_s_and_green_within_90_s_after_it_ends(running_stack):
    platform = SdkLikePlatform(running_stack.base_url, INGEST_TOKEN)
    platform.start()
    try:
        with Operator(running_stack.base_url, running_stack.admin_session()) as operator:
            assert operator.wait_until(all_green, 60) is not None, "no healthy baseline within 60 s"
            observed = run_incident(platform, operator, detect_within=40, incident_seconds=25,
                                    recover_within=RECOVERY_GOAL_S + 30)
    finally:
        platform.stop()

    print(f"incident drill: {observed}")
    assert observed.error_vital_red is not None and observed.error_vital_red <= DETECTION_GOAL_S, observed
    assert observed.http_api_flagged is not None and observed.http_api_flagged <= DETECTION_GOAL_S, observed
    assert observed.push_received is not None and observed.push_received <= DETECTION_GOAL_S, observed
    assert observed.all_green_again is not None and observed.all_green_again <= RECOVERY_GOAL_S, observed
    assert platform.sent_requests > 0
