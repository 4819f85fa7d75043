"""CPU cost of the receiver's pure-Python stages that have no database in them: the OTLP/JSON decoder
against protobuf's own JSON mapping (which it replaced), and the scrubber on ordinary short messages.

    .venv/bin/python -m bench.decode_bench [--quick]

Figures are CPU seconds (process_time), the fastest of N repeats per round, medians over rounds; the
ratio is computed inside each round so a busy machine slows both sides alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from telemetry.contract import scrub
from telemetry.otlp import JSON, OtlpSignal, decode_request, encode_request
from telemetry.otlp.json_ids import hex_ids_to_base64


def spans_request(count: int) -> Message:
    request = OtlpSignal.TRACES.request_class()
    spans = request.resource_spans.add().scope_spans.add().spans
    for index in range(count):
        spans.add(
            trace_id=index.to_bytes(16, "big"),
            span_id=(index + 1).to_bytes(8, "big"),
            name="GET /api/guilds/{id}",
            kind=trace_pb2.Span.SPAN_KIND_SERVER,
            start_time_unix_nano=1_700_000_000_000_000_000 + index,
            end_time_unix_nano=1_700_000_000_042_000_000 + index,
            attributes=[
                KeyValue(key="http.route", value=AnyValue(string_value="/api/guilds/{id}")),
                KeyValue(key="http.response.status_code", value=AnyValue(int_value=200)),
                KeyValue(key="http.request.method", value=AnyValue(string_value="GET")),
            ],
        )
    return request


def parse_dict_reference(body: bytes) -> Message:
    """The decoder json_builder replaced: protobuf's JSON mapping, after hex ids become base64."""
    document = json.loads(body)
    hex_ids_to_base64(OtlpSignal.TRACES, document)
    return json_format.ParseDict(document, OtlpSignal.TRACES.request_class(), ignore_unknown_fields=True)


def fastest_cpu_seconds(work: Callable[[], object], repeat: int = 3) -> float:
    timings = []
    for _ in range(repeat):
        started = time.process_time()
        work()
        timings.append(time.process_time() - started)
    return min(timings)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds on small inputs")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    spans = 256 if args.quick else 2048

    body = encode_request(spans_request(spans), JSON, gzip=False)
    ratios, built_rates = [], []
    for _ in range(rounds):
        built = fastest_cpu_seconds(lambda: decode_request(OtlpSignal.TRACES, body, JSON, None, len(body)))
        reference = fastest_cpu_seconds(lambda: parse_dict_reference(body))
        ratios.append(reference / built)
        built_rates.append(spans / built)
    print(f"OTLP/JSON traces, {spans} spans per request, {rounds} rounds:")
    print(f"  json_builder: {statistics.median(built_rates):,.0f} spans/s (median)")
    print(f"  speed-up over json_format.ParseDict: {statistics.median(ratios):.1f}x median "
          f"(min {min(ratios):.1f}x, max {max(ratios):.1f}x)")

    messages = [f"User {i} joined room general at 10:04 after {i % 90}s" for i in range(20_000)]
    rates = []
    for _ in range(rounds):
        seconds = fastest_cpu_seconds(lambda: [scrub(message) for message in messages], repeat=1)
        rates.append(len(messages) / seconds)
    print(f"scrub, short ordinary messages: {statistics.median(rates):,.0f} messages/s (median of {rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
