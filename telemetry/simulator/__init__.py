"""A simulated Kaiku platform emitting OTLP telemetry: the demo's traffic and the benchmarks' load.

`Platform.step(now, seconds) -> Batch` is pure generation; `OtlpSender` posts it to a receiver.
"""
