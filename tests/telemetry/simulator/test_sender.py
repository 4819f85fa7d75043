"""The OTLP/HTTP sender against a real local HTTP server."""

import socket
from datetime import UTC, datetime

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from telemetry.simulator.platform import Platform
from telemetry.simulator.profiles import LIGHT
from telemetry.simulator.sender import OtlpSender, SenderError
from tests.telemetry.simulator.receiver import Reply, ScriptedReceiver, serving

PEAK = datetime(2025, 3, 14, 18, 0, tzinfo=UTC)


@pytest.fixture
def traces() -> ExportTraceServiceRequest:
    return Platform(LIGHT, seed=1).step(PEAK, 1.0).traces


def span_total(request: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def test_posts_gzipped_protobuf_with_the_bearer_token(traces):
    receiver = ScriptedReceiver()
    with serving(receiver) as url:
        sender = OtlpSender(url + "/otlp/", "secret-token")
        sender.send("traces", traces)
        sender.close()

    [request] = receiver.received
    assert request.path == "/otlp/v1/traces"
    assert request.headers["authorization"] == "Bearer secret-token"
    assert request.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceRequest.FromString(request.body) == traces
    stats = sender.stats["traces"]
    assert stats.sent == stats.accepted == span_total(traces) > 0
    assert stats.rejected == stats.retried == 0


def test_partial_success_counts_as_rejected(traces):
    response = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=3, error_message="3 spans too old")
    )
    with serving(ScriptedReceiver(default=Reply(body=response.SerializeToString()))) as url:
        sender = OtlpSender(url, "t")
        sender.send("traces", traces)

    stats = sender.stats["traces"]
    assert (stats.rejected, stats.accepted) == (3, span_total(traces) - 3)
    assert stats.last_error == "3 spans too old"


def test_retries_503_and_429_honouring_retry_after(traces):
    receiver = ScriptedReceiver([Reply(503, headers={"Retry-After": "7"}), Reply(429)])
    waits: list[float] = []
    with serving(receiver) as url:
        sender = OtlpSender(url, "t", sleep=waits.append)
        sender.send("traces", traces)

    assert waits == [7.0, 2.0]  # the server's delay, then exponential backoff without one
    assert len(receiver.received) == 3
    stats = sender.stats["traces"]
    assert stats.retried == 2 and stats.accepted == span_total(traces)


def test_gives_up_after_the_retry_budget_and_counts_the_batch_rejected(traces):
    receiver = ScriptedReceiver(default=Reply(503, headers={"Retry-After": "0"}))
    with serving(receiver) as url:
        sender = OtlpSender(url, "t", max_retries=2, sleep=lambda _: None)
        sender.send("traces", traces)

    assert len(receiver.received) == 3
    assert sender.stats["traces"].rejected == span_total(traces)
    assert sender.stats["traces"].accepted == 0


def test_a_400_is_final_and_keeps_the_servers_reason(traces):
    status = Status(code=3, message="body is not an ExportTraceServiceRequest")
    receiver = ScriptedReceiver(default=Reply(400, body=status.SerializeToString()))
    with serving(receiver) as url:
        sender = OtlpSender(url, "t", sleep=lambda _: pytest.fail("a 400 must not be retried"))
        sender.send("traces", traces)

    assert len(receiver.received) == 1
    assert sender.stats["traces"].last_error == "HTTP 400: body is not an ExportTraceServiceRequest"


def test_a_refused_token_stops_the_sender(traces):
    with serving(ScriptedReceiver(default=Reply(401))) as url:
        sender = OtlpSender(url, "wrong")
        with pytest.raises(SenderError, match="refused the ingest token"):
            sender.send("traces", traces)


def test_an_unreachable_receiver_stops_the_sender(traces):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]

    with pytest.raises(SenderError, match="cannot reach"):
        OtlpSender(f"http://127.0.0.1:{free_port}", "t").send("traces", traces)


def test_empty_requests_are_not_sent():
    receiver = ScriptedReceiver()
    with serving(receiver) as url:
        OtlpSender(url, "t").send("logs", ExportLogsServiceRequest())

    assert receiver.received == []


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://host", "http://"])
def test_a_malformed_url_is_refused(url):
    with pytest.raises(ValueError, match="--url must look like"):
        OtlpSender(url, "t")
