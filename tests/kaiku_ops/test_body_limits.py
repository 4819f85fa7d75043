"""Requests refused before their body is read, driven through the project's real ASGI application
(kaiku_ops.asgi.application) with a hand-made ASGI connection that counts what the application reads."""

from __future__ import annotations

import asyncio
import random
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from kaiku_ops.asgi import application

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "gate-test-ingest-token-0123456789abcdef"
CHUNK = 64 * 1024


class Connection:
    """One HTTP request to `application`: `body_bytes` offered in CHUNK pieces (never more than asked for),
    and the response collected."""

    def __init__(self, path: str, *, method: str = "POST", headers: dict[str, str] | None = None,
                 body_bytes: int = 0, client: str = "127.0.0.1") -> None:
        self.scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
            + [(b"host", b"127.0.0.1:8000")],
            "client": (client, 50000), "server": ("127.0.0.1", 8000),
        }
        self.left = body_bytes
        self.reads = 0
        self.sent_all = False
        self.bytes_read = 0
        self.status: int | None = None
        self.response_headers: dict[bytes, bytes] = {}
        self.body = b""

    async def receive(self) -> dict:
        if self.sent_all:
            await asyncio.sleep(3600)  # the whole body is sent: only a disconnect could come now
        self.reads += 1
        piece = min(CHUNK, self.left)
        self.left -= piece
        self.bytes_read += piece
        self.sent_all = self.left <= 0
        return {"type": "http.request", "body": b"\0" * piece, "more_body": self.left > 0}

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.response_headers = dict(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    async def run(self) -> Connection:
        await asyncio.wait_for(application(self.scope, self.receive, self.send), timeout=60)
        return self


@pytest.fixture(autouse=True)
def ingest_settings(settings):
    settings.TELEMETRY_INGEST_TOKEN = TOKEN
    settings.TELEMETRY_MAX_BODY_BYTES = 1024 * 1024
    return settings


def some_client() -> str:
    """An address of its own per test, so failure counters of other tests (shared Redis) never meet it."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


async def test_an_export_without_a_token_is_401_before_any_of_its_body_is_read():
    connection = await Connection("/v1/logs", headers={"Content-Length": str(200 * 1024 * 1024),
                                                       "Content-Type": "application/x-protobuf"},
                                  body_bytes=200 * 1024 * 1024, client=some_client()).run()

    assert connection.status == 401
    assert connection.reads == 0
    assert connection.response_headers[b"www-authenticate"] == b'Bearer realm="otlp"'


async def test_a_declared_length_over_the_cap_is_413_before_any_of_it_is_read():
    connection = await Connection("/v1/traces", headers={"Authorization": f"Bearer {TOKEN}",
                                                         "Content-Length": str(settings.TELEMETRY_MAX_BODY_BYTES + 1),
                                                         "Content-Type": "application/json"},
                                  body_bytes=settings.TELEMETRY_MAX_BODY_BYTES + 1, client=some_client()).run()

    assert connection.status == 413
    assert connection.reads == 0
    assert b"limit" in connection.body  # an OTLP Status in JSON, as the request was JSON


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/api/admin/observability/summary", "/static/x.css",
                                  "/no-such-page"])
async def test_a_route_that_takes_no_body_refuses_one_unread(path):
    connection = await Connection(path, headers={"Content-Length": str(150 * 1024 * 1024)},
                                  body_bytes=150 * 1024 * 1024).run()

    assert connection.status == 413
    assert connection.reads == 0
    assert b"takes no request body" in connection.body


async def test_a_chunked_body_stops_being_read_when_it_passes_the_cap():
    cap = settings.TELEMETRY_MAX_BODY_BYTES
    connection = await Connection("/v1/logs", headers={"Authorization": f"Bearer {TOKEN}",
                                                       "Transfer-Encoding": "chunked",
                                                       "Content-Type": "application/x-protobuf"},
                                  body_bytes=50 * cap, client=some_client()).run()

    assert connection.status == 413
    assert connection.bytes_read <= cap + CHUNK
    assert connection.bytes_read > cap


async def test_a_chunked_body_on_a_route_without_one_is_refused_at_its_first_byte():
    connection = await Connection("/healthz", headers={"Transfer-Encoding": "chunked"},
                                  body_bytes=10 * CHUNK).run()

    assert connection.status == 413
    assert connection.reads == 1


async def test_a_malformed_content_length_is_a_400():
    connection = await Connection("/v1/logs", headers={"Content-Length": "-5"}, client=some_client()).run()

    assert connection.status == 400


async def test_failed_tokens_from_one_address_get_429_with_retry_after(settings):
    settings.TELEMETRY_AUTH_FAILURES_PER_MINUTE = 3
    client = some_client()
    statuses = []
    for token in ("wrong-1", "wrong-2", "wrong-3", "wrong-4", TOKEN):
        connection = await Connection("/v1/logs", headers={"Authorization": f"Bearer {token}",
                                                           "Content-Length": "0"}, client=client).run()
        statuses.append(connection.status)
    other = await Connection("/v1/logs", headers={"Authorization": "Bearer wrong", "Content-Length": "0"},
                             client=some_client()).run()

    # while it is throttled, an address cannot tell a right token from a wrong one
    assert statuses == [401, 401, 401, 429, 429]
    assert 1 <= int(connection.response_headers[b"retry-after"]) <= 60
    assert other.status == 401


@pytest.mark.django_db
def test_the_view_throttles_failed_tokens_too_when_called_without_the_gate(settings):
    """Django's test client bypasses the ASGI layer: the view keeps its own check and the same throttle."""
    settings.TELEMETRY_AUTH_FAILURES_PER_MINUTE = 2
    client, address = Client(), some_client()
    answers = [client.post("/v1/logs", b"", content_type="application/x-protobuf", REMOTE_ADDR=address,
                           HTTP_AUTHORIZATION="Bearer nope") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [401, 401, 429]
    assert answers[-1]["Retry-After"].isdigit()


async def test_a_path_that_leaves_the_static_directories_is_a_404_not_a_500():
    for path in ("/static/../../.data/secret-key", "/static/%2e%2e/%2e%2e/.data/secret-key",
                 "/static/..%2f..%2fmanage.py"):
        connection = await Connection(path, method="GET").run()

        assert connection.status == 404, path
        assert b"SECRET" not in connection.body.upper()


def test_the_procfile_passes_proxy_headers_only_behind_the_front_door():
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    command = web.split(":", 1)[1]

    def daphne_arguments(behind_proxy: str | None) -> str:
        env = {"PATH": "/usr/bin:/bin"}
        if behind_proxy is not None:
            env["KAIKU_BEHIND_PROXY"] = behind_proxy
        result = subprocess.run(["sh", "-c", f'daphne() {{ echo "$@"; }}; {command}'], env=env,
                                capture_output=True, text=True, check=True)
        return result.stdout

    assert "--proxy-headers" not in daphne_arguments(None)
    assert "--proxy-headers" not in daphne_arguments("0")
    assert "--proxy-headers" not in daphne_arguments("false")
    assert "--proxy-headers" in daphne_arguments("1")
    assert "--proxy-headers" in daphne_arguments("true")
