"""`manage.py simulate_traffic` against a scripted local OTLP receiver."""

import io
import socket

import pytest
from django.core.management import CommandError, call_command

from telemetry.voice import voice_sessions
from tests.telemetry.simulator.receiver import Reply, ScriptedReceiver, serving


def simulate(*args: str) -> str:
    out = io.StringIO()
    call_command("simulate_traffic", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_short_run_sends_every_signal_and_prints_totals():
    receiver = ScriptedReceiver()
    with serving(receiver) as url:
        output = simulate("--profile", "heavy", "--duration", "2", "--batch-seconds", "0.5", "--url", url,
                          "--token", "t", "--seed", "1", "--no-voice-rows")

    paths = {request.path for request in receiver.received}
    assert {"/v1/metrics", "/v1/traces"} <= paths
    assert all(request.headers["authorization"] == "Bearer t" for request in receiver.received)
    totals = output.strip().splitlines()[-1]
    assert totals.startswith("totals: points ") and " 0 rejected" in totals


@pytest.mark.django_db
def test_voice_rows_land_in_kaiku_ops_own_voice_tables():
    with serving(ScriptedReceiver()) as url:
        simulate("--duration", "1", "--url", url, "--token", "t", "--seed", "2")

    assert voice_sessions().exists()


def test_a_wrong_token_ends_the_run_with_one_clear_error():
    with serving(ScriptedReceiver(default=Reply(401))) as url, pytest.raises(CommandError) as error:
        simulate("--duration", "5", "--url", url, "--token", "wrong", "--no-voice-rows")

    assert "refused the ingest token (HTTP 401)" in str(error.value)
    assert "\n" not in str(error.value)


def test_an_unreachable_server_ends_the_run_with_one_clear_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]

    with pytest.raises(CommandError, match=f"cannot reach http://127.0.0.1:{free_port}"):
        simulate("--duration", "5", "--url", f"http://127.0.0.1:{free_port}", "--token", "t",
                 "--no-voice-rows")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "localhost:8000"], "--url must look like"),
        (["--duration", "-1"], "--duration must be >= 0"),
    ],
)
def test_bad_arguments_are_refused(args, message):
    with pytest.raises(CommandError, match=message):
        simulate("--token", "t", *args)
