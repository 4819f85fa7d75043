"""The three OTLP signals and the protobuf messages each one exchanges."""

from enum import StrEnum

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


class OtlpSignal(StrEnum):
    """An OTLP signal; the value is the last segment of its path (`/v1/<value>`)."""

    METRICS = "metrics"
    LOGS = "logs"
    TRACES = "traces"

    @property
    def request_class(self) -> type[Message]:
        return _REQUEST_CLASSES[self]

    @property
    def response_class(self) -> type[Message]:
        return _RESPONSE_CLASSES[self]

    @property
    def rejected_field(self) -> str:
        """Name of the `partial_success` counter of rejected items for this signal."""
        return _REJECTED_FIELDS[self]


_REQUEST_CLASSES: dict[OtlpSignal, type[Message]] = {
    OtlpSignal.METRICS: metrics_service_pb2.ExportMetricsServiceRequest,
    OtlpSignal.LOGS: logs_service_pb2.ExportLogsServiceRequest,
    OtlpSignal.TRACES: trace_service_pb2.ExportTraceServiceRequest,
}
_RESPONSE_CLASSES: dict[OtlpSignal, type[Message]] = {
    OtlpSignal.METRICS: metrics_service_pb2.ExportMetricsServiceResponse,
    OtlpSignal.LOGS: logs_service_pb2.ExportLogsServiceResponse,
    OtlpSignal.TRACES: trace_service_pb2.ExportTraceServiceResponse,
}
_REJECTED_FIELDS: dict[OtlpSignal, str] = {
    OtlpSignal.METRICS: "rejected_data_points",
    OtlpSignal.LOGS: "rejected_log_records",
    OtlpSignal.TRACES: "rejected_spans",
}
