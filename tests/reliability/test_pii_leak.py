"""No planted secret survives: every forbidden field and every scrubber pattern of the contract, planted in
every place of OTLP metrics, logs and traces, is sent through /v1/*, flushed, and then looked for in a
`pg_dump --data-only` of the telemetry and voice tables, in every export, in the list APIs and in the
WebSocket stream an admin receives."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django.test import Client
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.trace.v1 import trace_pb2

from kaiku_ops.asgi import application
from telemetry.contract import FORBIDDEN_KEY_PREFIXES, FORBIDDEN_KEYS, LOG_ATTR_ALLOWLIST, Attr, Label, Metric
from telemetry.ingest import cardinality
from telemetry.ingest.buffer import flush_pending
from tests.telemetry.ingest.otlp_builders import (
    SEVERITY_ERROR,
    SEVERITY_WARN,
    counter,
    histogram,
    key_values,
    log_record,
    logs_request,
    metrics_request,
    ns,
    span,
    traces_request,
)

INGEST_TOKEN = "pii-suite-ingest-token-0123456789"
NOW = datetime.now(UTC)

# The secret part of each scrubber pattern (section 8): what must never be found afterwards.
SCRUBBED_SECRETS = {
    "bearer token": "QmVhcmVyQ2FuYXJ5VG9rZW4x",
    "basic credentials": "QmFzaWNDYW5hcnk6cGFzcw",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJlY2FuYXJ5",
    "password=": "Hunter2Canary",
    "token=": "TokenCanary55",
    "secret=": "SecretCanary66",
    "api_key=": "ApiKeyCanary77",
    "key=": "KeyCanary88",
    "e-mail": "pii.canary@example.com",
    "ipv4": "203.0.113.77",
    "ipv6": "2001:db8:85a3::8a2e:370:7334",
    "uuid": "6f1c2a9e-3b7d-4c52-9e8f-0a1b2c3d4e5f",
    "hex run": "deadbeefcafebabe0123456789abcdef0042",
    "base64 run": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MTIzNDU2",
    "query string": "QueryStringCanary99",
}
PII_TEXT = (
    f"login failed for {SCRUBBED_SECRETS['e-mail']} from {SCRUBBED_SECRETS['ipv4']} "
    f"and {SCRUBBED_SECRETS['ipv6']} with Authorization: Bearer {SCRUBBED_SECRETS['bearer token']} "
    f"or Basic {SCRUBBED_SECRETS['basic credentials']} jwt {SCRUBBED_SECRETS['jwt']} "
    f"password={SCRUBBED_SECRETS['password=']} token={SCRUBBED_SECRETS['token=']} "
    f'{{"secret": "{SCRUBBED_SECRETS["secret="]}"}} api_key={SCRUBBED_SECRETS["api_key="]} '
    f"key={SCRUBBED_SECRETS['key=']} session {SCRUBBED_SECRETS['uuid']} blob {SCRUBBED_SECRETS['hex run']} "
    f"{SCRUBBED_SECRETS['base64 run']} at /login?next={SCRUBBED_SECRETS['query string']}"
)
RESOLVED_ROUTE = (f"/api/v1/users/{SCRUBBED_SECRETS['e-mail']}/sessions/{SCRUBBED_SECRETS['uuid']}"
                  f"/devices/{SCRUBBED_SECRETS['hex run']}/12345678")
# Every forbidden key, in the spellings senders use, each with a value found nowhere else.
FORBIDDEN_FIELDS = {
    key: f"ForbiddenCanary{index:03d}"
    for index, key in enumerate([
        *FORBIDDEN_KEYS, *(key.upper() for key in FORBIDDEN_KEYS[:5]), "user_email", "X-Api-Key",
        "app.user.id", *(f"{prefix}.anything" for prefix in FORBIDDEN_KEY_PREFIXES),
        "http.request.header.authorization", "chat.message.body",
    ])
}
ALL_PLANTED = {**{f"scrubber: {name}": value for name, value in SCRUBBED_SECRETS.items()},
               **{f"forbidden: {key}": value for key, value in FORBIDDEN_FIELDS.items()}}


def planted_attributes() -> dict[str, object]:
    """Forbidden keys with their canaries, and every key the contract reads carrying the PII text."""
    readable = {*(label.value for label in Label), *LOG_ATTR_ALLOWLIST, Attr.EVENT_NAME.value,
                Attr.KAIKU_DOMAIN.value, Attr.DB_SYSTEM.value, Attr.CODE_FUNCTION.value}
    return {**FORBIDDEN_FIELDS, **{key: PII_TEXT for key in readable}, Label.HTTP_ROUTE.value: RESOLVED_ROUTE}


def plant_in_resource_and_scope(request, resource_field: str, scope_field: str) -> None:
    for resource_entry in getattr(request, resource_field):
        resource_entry.resource.attributes.extend(key_values({
            **FORBIDDEN_FIELDS, Attr.SERVICE_VERSION.value: PII_TEXT,
            Attr.SERVICE_INSTANCE_ID.value: PII_TEXT, Attr.DEPLOYMENT_ENVIRONMENT_NAME.value: PII_TEXT}))
        for scope_entry in getattr(resource_entry, scope_field):
            scope_entry.scope.CopyFrom(InstrumentationScope(name=PII_TEXT, version=PII_TEXT,
                                                            attributes=key_values(FORBIDDEN_FIELDS)))


def metrics_payload() -> bytes:
    now_ns, start_ns = ns(NOW), ns(NOW) - 60 * 10**9
    attributes = planted_attributes()
    metrics = [counter(metric.value, [(start_ns, now_ns, 5, attributes)]) for metric in (
        Metric.HTTP_REQUESTS_TOTAL, Metric.HTTP_ERRORS_TOTAL, Metric.WS_MESSAGES_TOTAL,
        Metric.VOICE_JOINS_TOTAL, Metric.OTEL_EXPORTS_TOTAL, Metric.AUTH_LOGIN_ATTEMPTS_TOTAL)]
    metrics += [histogram(metric.value, [(start_ns, now_ns, [0.1, 1.0], [1, 2, 3], 4.2, attributes)])
                for metric in (Metric.HTTP_REQUEST_DURATION_SECONDS, Metric.DB_QUERY_DURATION_SECONDS)]
    request = metrics_request(*metrics, service="kaiku-api")
    plant_in_resource_and_scope(request, "resource_metrics", "scope_metrics")
    return request.SerializeToString()


def logs_payload() -> bytes:
    records = [log_record(ns(NOW), severity, PII_TEXT, planted_attributes(), trace_id=bytes(range(16)),
                          span_id=bytes(range(8))) for severity in (SEVERITY_WARN, SEVERITY_ERROR)]
    for record in records:
        record.event_name = PII_TEXT
    request = logs_request(*records, service="kaiku-api")
    plant_in_resource_and_scope(request, "resource_logs", "scope_logs")
    return request.SerializeToString()


def traces_payload() -> bytes:
    spans = []
    for index, (parent, attributes) in enumerate([
        (b"", planted_attributes()),
        (b"", {**planted_attributes(), Attr.DB_SYSTEM.value: "postgresql"}),
    ]):
        entry = span(bytes([index + 1] * 16), bytes([index + 1] * 8), ns(NOW), 2500.0, name=PII_TEXT,
                     parent=parent, error=True, attributes=attributes)
        entry.events.append(trace_pb2.Span.Event(name=PII_TEXT, attributes=key_values(FORBIDDEN_FIELDS)))
        entry.status.message = PII_TEXT
        spans.append(entry)
    request = traces_request(*spans, service="kaiku-api")
    plant_in_resource_and_scope(request, "resource_spans", "scope_spans")
    return request.SerializeToString()


def send_everything() -> list[int]:
    client = Client()
    statuses = []
    for path, payload in (("/v1/metrics", metrics_payload()), ("/v1/logs", logs_payload()),
                          ("/v1/traces", traces_payload())):
        response = client.generic("POST", path, payload, content_type="application/x-protobuf",
                                  HTTP_AUTHORIZATION=f"Bearer {INGEST_TOKEN}")
        statuses.append(response.status_code)
    flush_pending(include_open_minute=True)
    return statuses


def pg_dump_binary() -> str:
    """The embedded server's pg_dump when it is installed (it is the newer one, and pg_dump refuses servers
    newer than itself), else the system's."""
    from kaiku_ops.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres().bin_dir / "pg_dump"
    found = str(embedded) if embedded.exists() else shutil.which("pg_dump")
    assert found, "no pg_dump: install the PostgreSQL client or pgserver"
    return found


def dump_native_tables() -> str:
    """The data of every telemetry and voice table, partitions included."""
    db = connection.settings_dict
    command = [pg_dump_binary(), "--data-only", "--no-owner", "-h", db["HOST"] or "127.0.0.1",
               "-p", str(db["PORT"] or 5432), "-U", db["USER"] or "postgres",
               "-t", "telemetry_*", "-t", "connection_*", db["NAME"]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env={"PGPASSWORD": db.get("PASSWORD") or "", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def read_side_texts(client: Client) -> str:
    texts = []
    for kind in ("logs", "traces", "metrics"):
        for file_format in ("csv", "json"):
            response = client.get("/api/admin/observability/export", {"type": kind, "format": file_format,
                                                                      "range": "1h"})
            assert response.status_code == 200, response.content[:300]
            texts.append(b"".join(response.streaming_content).decode()
                         if response.streaming else response.content.decode())
    for path, query in (("logs", {"range": "1h"}), ("traces", {"range": "1h"}),
                        ("top-errors", {"range": "1h"}), ("top-routes", {"range": "1h"}), ("summary", {}),
                        ("trends", {"metric": Metric.HTTP_REQUESTS_TOTAL.value, "range": "1h",
                                    "group_by": Label.HTTP_ROUTE.value})):
        response = client.get(f"/api/admin/observability/{path}", query)
        assert response.status_code == 200, (path, response.content[:300])
        texts.append(response.content.decode())
    return "\n".join(texts)


def leaks_in(text: str) -> dict[str, str]:
    return {where: value for where, value in ALL_PLANTED.items() if value.lower() in text.lower()}


@pytest.fixture
def receiver(settings):
    settings.TELEMETRY_INGEST_TOKEN = INGEST_TOKEN
    settings.TELEMETRY_TRACE_SAMPLE_RATE = 1.0
    cardinality.forget_known_series()
    yield
    cardinality.forget_known_series()


@pytest.fixture
def clean_native_tables(transactional_db):
    def truncate():
        with connection.cursor() as cursor:
            cursor.execute("SELECT string_agg(quote_ident(relname), ', ') FROM pg_class WHERE relkind = 'p' "
                           "AND (relname LIKE 'telemetry%%' OR relname LIKE 'connection%%')")
            partitioned = cursor.fetchone()[0]
            cursor.execute(f"TRUNCATE {partitioned}, telemetry_metric_points_pending, "
                           "telemetry_metric_streams, telemetry_series")

    truncate()
    yield
    truncate()


def test_the_planted_text_really_holds_every_pattern():
    """The canaries are where the test says they are (a typo here would make the suite pass vacuously)."""
    for value in SCRUBBED_SECRETS.values():
        assert value in PII_TEXT
    assert len(FORBIDDEN_FIELDS) >= len(FORBIDDEN_KEYS) + len(FORBIDDEN_KEY_PREFIXES)


def test_nothing_planted_reaches_the_tables_the_exports_or_the_api(receiver, clean_native_tables,
                                                                   system_admin):
    assert send_everything() == [200, 200, 200]
    dump = dump_native_tables()
    client = Client()
    client.force_login(system_admin)
    read_side = read_side_texts(client)

    assert "kaiku-api" in dump and "[email]" in dump, "the data did arrive (positive control)"
    assert "kaiku-api" in read_side
    assert leaks_in(dump) == {}
    assert leaks_in(read_side) == {}


@pytest.mark.django_db(transaction=True)
async def test_nothing_planted_reaches_an_admins_socket(receiver, clean_native_tables, system_admin):
    @database_sync_to_async
    def session_cookie() -> str:
        client = Client()
        client.force_login(system_admin)
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    socket = WebsocketCommunicator(application, "/ws/admin/observability/", headers=[
        (b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={await session_cookie()}".encode())])
    connected, _ = await socket.connect(timeout=5)
    assert connected
    await socket.send_json_to({"type": "subscribe", "panels": ["overview", "logs"]})
    frames = [await socket.receive_from(timeout=5)]
    assert await asyncio.to_thread(send_everything) == [200, 200, 200]
    while not await socket.receive_nothing(timeout=3):
        frames.append(await socket.receive_from())
    await socket.disconnect()
    stream = "\n".join(frames)

    assert "admin.observability.error_event" in stream, "the ERROR log was pushed (positive control)"
    assert leaks_in(stream) == {}
