"""What the receiver reads from an OTLP Resource."""

from __future__ import annotations

from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from telemetry.contract import Attr

UNKNOWN_SERVICE = "unknown_service"  # the OTel SDK's own default for a missing service.name
SERVICE_NAME_MAX_LENGTH = 128


def service_name(resource: Resource) -> str:
    """The resource's `service.name` (a string attribute), else `unknown_service`."""
    for attribute in resource.attributes:
        if attribute.key == Attr.SERVICE_NAME:
            name = attribute.value.string_value.strip()
            return name[:SERVICE_NAME_MAX_LENGTH] or UNKNOWN_SERVICE
    return UNKNOWN_SERVICE
