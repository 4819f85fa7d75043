"""The Command Center socket, driven through the project's real ASGI stack (origin check, session auth) and
the real Redis channel layer."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.urls import path

from command_center import presence, push
from command_center.consumers import (
    CLOSE_CHECK_FAILED,
    CLOSE_SERVICE_RESTART,
    MAX_FRAME_BYTES,
    ErrorStormLimiter,
    FrameError,
    ObservabilityConsumer,
    SubscriptionRequest,
    parse_client_frame,
    patient_receive,
)
from kaiku_ops.asgi import application
from kaiku_ops.security import ExactOriginValidator

SOCKET_PATH = "/ws/admin/observability/"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


# --- frames and the storm limiter (pure) ---------------------------------------------------------------

def test_a_subscribe_frame_names_its_panels():
    request = parse_client_frame('{"type": "subscribe", "panels": ["overview", "voice"]}')
    assert request == SubscriptionRequest(action="subscribe", panels=frozenset({"overview", "voice"}))


@pytest.mark.parametrize(("text", "bytes_data", "code"), [
    ("{not json", None, "malformed_json"),
    ('["subscribe"]', None, "invalid_frame"),
    ('{"type": "shout", "panels": ["overview"]}', None, "unknown_type"),
    ('{"panels": ["overview"]}', None, "unknown_type"),
    ('{"type": "subscribe", "panels": "overview"}', None, "invalid_frame"),
    ('{"type": "subscribe", "panels": []}', None, "invalid_frame"),
    ('{"type": "subscribe", "panels": [1]}', None, "invalid_frame"),
    ('{"type": "subscribe", "panels": ["overview", "secrets"]}', None, "unknown_panel"),
    (None, b'{"type": "subscribe"}', "binary_frame"),
    ('{"type": "subscribe", "panels": ["overview"], "pad": "' + "x" * MAX_FRAME_BYTES + '"}', None,
     "frame_too_large"),
])
def test_a_bad_frame_is_refused_with_a_code(text, bytes_data, code):
    with pytest.raises(FrameError) as refused:
        parse_client_frame(text, bytes_data)
    assert refused.value.code == code


def test_a_4_kib_frame_of_nested_brackets_is_an_invalid_frame_not_a_recursion_error():
    for text in ("[" * MAX_FRAME_BYTES, '[{"a":' * (MAX_FRAME_BYTES // 6), "[" * 2048 + "]" * 2048):
        with pytest.raises(FrameError) as refused:
            parse_client_frame(text)
        assert refused.value.code == "invalid_frame"
        assert "nest" in refused.value.message


def test_the_limit_counts_bytes_not_characters():
    panels = '["overview"]'
    frame = '{"type": "subscribe", "panels": %s, "note": "%s"}'
    fits = frame % (panels, "é" * ((MAX_FRAME_BYTES - 60) // 2))
    assert len(fits.encode()) <= MAX_FRAME_BYTES
    parse_client_frame(fits)
    with pytest.raises(FrameError, match="4096 bytes"):
        parse_client_frame(frame % (panels, "é" * (MAX_FRAME_BYTES // 2)))


def test_an_unknown_panel_error_names_it_and_the_known_panels():
    with pytest.raises(FrameError) as refused:
        parse_client_frame('{"type": "unsubscribe", "panels": ["traces"]}')
    assert "'traces'" in refused.value.message
    assert "overview" in refused.value.message and "voice" in refused.value.message


def test_the_limiter_admits_twenty_errors_a_second_and_holds_the_rest():
    limiter = ErrorStormLimiter(limit=20, window_s=1.0)
    admitted = [limiter.admit(now=100.0 + i / 100) for i in range(25)]
    assert admitted == [True] * 20 + [False] * 5
    assert limiter.admit(now=101.0)  # a new window


def test_held_errors_come_out_once_as_a_burst_since_the_earliest():
    limiter = ErrorStormLimiter()
    assert limiter.take_burst() is None
    limiter.hold(1, "2026-03-01T10:00:00.500Z")
    limiter.hold(30, "2026-03-01T10:00:00.200Z")
    assert limiter.holding
    assert limiter.take_burst() == (31, "2026-03-01T10:00:00.200Z")
    assert limiter.take_burst() is None and not limiter.holding


def test_the_burst_waits_for_the_end_of_the_window():
    limiter = ErrorStormLimiter(window_s=1.0)
    limiter.admit(now=50.0)
    assert limiter.seconds_until_window_end(now=50.25) == pytest.approx(0.75)
    assert limiter.seconds_until_window_end(now=52.0) == 0.0


# --- sockets -------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def isolated_channel_layer(settings):
    """A fresh Redis key prefix per test, so groups and presence of other tests are invisible."""
    layers = json.loads(json.dumps(settings.CHANNEL_LAYERS))
    layers["default"]["CONFIG"]["prefix"] = f"test-push-{uuid.uuid4().hex[:12]}"
    settings.CHANNEL_LAYERS = layers


@pytest.fixture
def user_of_role(request):
    return request.getfixturevalue(request.param)


@database_sync_to_async
def session_cookie(user) -> str:
    """Log `user` in as the admin login page would; the session cookie a browser would then send."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def socket_app(**consumer_options):
    """The socket behind the same middleware as kaiku_ops.asgi, with consumer options for the test."""
    consumer = ObservabilityConsumer.as_asgi(**consumer_options)
    return ExactOriginValidator(AuthMiddlewareStack(URLRouter([path(SOCKET_PATH[1:], consumer)])))


async def open_socket(cookie: str | None = None, *, app=application, origin: str = "http://127.0.0.1:8000",
                      path: str = SOCKET_PATH, extra_headers: tuple = ()):
    headers = [(b"origin", origin.encode()), (b"host", b"127.0.0.1:8000"), *extra_headers]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    socket = WebsocketCommunicator(app, path, headers=headers)
    connected, _ = await socket.connect(timeout=5)
    return socket, connected


async def close_code(socket: WebsocketCommunicator) -> int:
    output = await socket.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    return output["code"]


async def subscribe(socket: WebsocketCommunicator, *panels: str, action: str = "subscribe") -> dict:
    await socket.send_json_to({"type": action, "panels": list(panels)})
    reply = await socket.receive_json_from(timeout=5)
    assert reply["type"] == "subscribed", reply
    return reply


async def publish(event: dict) -> None:
    await asyncio.to_thread(push.publish, event)


async def publish_errors(rows: list[dict]) -> None:
    await asyncio.to_thread(push.publish_error_events, rows)


def error_row(second: float, **extra) -> dict:
    ts = datetime(2026, 3, 1, 10, 0, tzinfo=UTC) + timedelta(seconds=second)
    return {"ts": ts.isoformat(), "service": "kaiku-api", "domain": "db", "event": "db.query_failed",
            "message": "connection reset", "trace_id": TRACE_ID, "level": "ERROR", **extra}


@pytest.mark.django_db(transaction=True)
async def test_an_anonymous_socket_is_closed_with_4401():
    socket, connected = await open_socket()
    assert connected
    assert await close_code(socket) == 4401


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("user_of_role", ["plain_user", "staff_user"], indirect=True)
async def test_a_user_without_the_permission_is_closed_with_4403(user_of_role):
    cookie = await session_cookie(user_of_role)
    socket, connected = await open_socket(cookie)
    assert connected
    assert await close_code(socket) == 4403


@pytest.mark.django_db(transaction=True)
async def test_a_deactivated_superuser_counts_as_logged_out(superuser):
    cookie = await session_cookie(superuser)
    superuser.is_active = False
    await database_sync_to_async(superuser.save)()
    socket, _ = await open_socket(cookie)
    assert await close_code(socket) == 4401


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("user_of_role", ["superuser", "system_admin"], indirect=True)
async def test_admins_connect_and_subscribe(user_of_role):
    socket, connected = await open_socket(await session_cookie(user_of_role))
    assert connected
    reply = await subscribe(socket, "overview", "voice")
    assert reply["panels"] == ["overview", "voice"]
    assert reply["seq"] == 1
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_page_from_a_foreign_origin_cannot_connect(superuser):
    socket, connected = await open_socket(await session_cookie(superuser), origin="https://evil.example")
    assert not connected


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("origin", ["http://127.0.0.1:9999", "http://localhost:1337", "https://127.0.0.1:8000",
                                    "http://127.0.0.1", "http://127.0.0.1:8000.evil.example", "null", "",
                                    "http://127.0.0.1:8000/path", "http://user@127.0.0.1:8000"])
async def test_only_the_exact_origin_of_this_site_may_connect(superuser, origin):
    socket, connected = await open_socket(await session_cookie(superuser), origin=origin)
    assert not connected


@pytest.mark.django_db(transaction=True)
async def test_origins_trusted_for_forms_are_trusted_for_sockets(superuser, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://ops.example.org", "https://*.kaiku.example:8443"]
    cookie = await session_cookie(superuser)
    for origin, allowed in (("https://ops.example.org", True), ("https://ops.example.org:443", True),
                            ("http://ops.example.org", False), ("https://ops.example.org:8443", False),
                            ("https://eu.kaiku.example:8443", True), ("https://kaiku.example.evil:8443", False),
                            ("https://eu.kaiku.example", False)):
        socket, connected = await open_socket(cookie, origin=origin)
        assert connected == allowed, origin
        if connected:
            await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_an_https_page_behind_the_front_door_connects_and_a_forged_proto_does_not_count(superuser,
                                                                                              settings):
    cookie, forwarded = await session_cookie(superuser), ((b"x-forwarded-proto", b"https"),)
    socket, connected = await open_socket(cookie, origin="https://127.0.0.1:8000", extra_headers=forwarded)
    assert not connected  # not behind the proxy: anyone could send that header
    settings.KAIKU_BEHIND_PROXY = True
    socket, connected = await open_socket(cookie, origin="https://127.0.0.1:8000", extra_headers=forwarded)
    assert connected
    await socket.disconnect()
    socket, connected = await open_socket(cookie, origin="http://127.0.0.1:8000", extra_headers=forwarded)
    assert not connected


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/ws/x", "/ws/admin/observability", "/ws/admin/observability/extra/", "/"])
async def test_an_unknown_socket_route_is_refused_cleanly(superuser, path):
    socket, connected = await open_socket(await session_cookie(superuser), path=path)
    assert not connected
    await socket.wait(timeout=1)  # the application ended without an exception


@pytest.mark.django_db(transaction=True)
async def test_a_nested_frame_gets_an_error_frame_and_the_socket_keeps_working(superuser):
    socket, _ = await open_socket(await session_cookie(superuser))
    await socket.send_to(text_data="[" * MAX_FRAME_BYTES)
    reply = await socket.receive_json_from(timeout=5)
    assert (reply["type"], reply["code"]) == ("error", "invalid_frame")

    assert (await subscribe(socket, "logs"))["seq"] == 2
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_events_reach_only_the_panels_subscribed(system_admin):
    socket, _ = await open_socket(await session_cookie(system_admin))
    await socket.receive_nothing(timeout=0.2)  # nothing arrives before a subscription
    await subscribe(socket, "overview")

    await publish(push.voice_pulse({"active_sessions": 3, "active_rooms": 1, "join_success_rate_1h": 99.0}))
    await publish(push.vital_signs({"latency_p95": 182.5, "traffic_rate": 41.0, "error_rate": 0.4,
                                    "saturation_pct": 35.0}))
    vitals = await socket.receive_json_from(timeout=5)
    assert vitals == {"type": push.VITAL_SIGNS, "ts": vitals["ts"], "seq": 2, "latency_p95": 182.5,
                      "traffic_rate": 41.0, "error_rate": 0.4, "saturation_pct": 35.0}

    assert (await subscribe(socket, "overview", action="unsubscribe"))["panels"] == []
    await publish(push.vital_signs({"latency_p95": 1.0}))
    await publish(push.health_change("postgresql", "healthy", "down", None))
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_infrastructure_panel_gets_health_changes_but_no_errors(system_admin):
    socket, _ = await open_socket(await session_cookie(system_admin))
    await subscribe(socket, "infrastructure")
    await publish_errors([error_row(0)])
    transition = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
    await publish(push.health_change("redis", "healthy", "down", transition))
    event = await socket.receive_json_from(timeout=5)
    assert event == {"type": push.HEALTH_CHANGE, "ts": "2026-03-01T10:05:00.000Z", "seq": 2,
                     "service": "redis", "old_status": "healthy", "new_status": "down"}
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_bad_frames_get_error_frames_and_the_socket_keeps_working(superuser):
    socket, _ = await open_socket(await session_cookie(superuser))
    bad_frames = ["{oops", '{"type": "subscribe", "panels": ["nope"]}', "x" * (MAX_FRAME_BYTES + 1)]
    for text in bad_frames:
        await socket.send_to(text_data=text)
    await socket.send_to(bytes_data=b"\x00\x01")
    replies = [await socket.receive_json_from(timeout=5) for _ in range(4)]
    assert [reply["code"] for reply in replies] == ["malformed_json", "unknown_panel", "frame_too_large",
                                                   "binary_frame"]
    assert {reply["type"] for reply in replies} == {"error"}
    assert [reply["seq"] for reply in replies] == [1, 2, 3, 4]

    assert (await subscribe(socket, "logs"))["seq"] == 5
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_error_events_carry_only_the_table_9_1_fields(system_admin):
    socket, _ = await open_socket(await session_cookie(system_admin))
    await subscribe(socket, "logs")
    await publish_errors([error_row(0, **{"user.id": "u-42", "client.address": "10.1.2.3", "attrs": {"x": 1},
                                          "message": "login for bob@example.com from 10.1.2.3 failed"})])
    event = await socket.receive_json_from(timeout=5)
    # Table 9.1's fields, plus the error group the live feed counts the event into (issue 16).
    assert set(event) == {"type", "ts", "seq", "service", "domain", "event", "message", "trace_id", "group"}
    assert event["message"] == "login for [email] from [ip] failed"
    assert event["ts"] == "2026-03-01T10:00:00.000Z" and event["trace_id"] == TRACE_ID
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_an_error_storm_is_coalesced_into_one_burst_per_second(system_admin):
    socket, _ = await open_socket(await session_cookie(system_admin))
    await subscribe(socket, "overview")
    await publish_errors([error_row(i / 100) for i in range(12)])
    await publish_errors([error_row(1 + i / 100) for i in range(38)])

    frames = [await socket.receive_json_from(timeout=5) for _ in range(21)]
    assert [frame["type"] for frame in frames] == [push.ERROR_EVENT] * 20 + [push.ERROR_BURST]
    burst = frames[-1]
    assert burst["count"] == 30
    assert burst["since"] == "2026-03-01T10:00:01.080Z"  # the first error not shown one by one
    seqs = [frame["seq"] for frame in frames]
    assert seqs == list(range(2, 23))
    assert await socket.receive_nothing(timeout=1.2)  # one burst, not one per held error

    await publish_errors([error_row(5)])  # the storm is over: single errors flow again
    assert (await socket.receive_json_from(timeout=5))["type"] == push.ERROR_EVENT
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_revoked_admin_is_disconnected_with_4403(system_admin):
    cookie = await session_cookie(system_admin)
    socket, _ = await open_socket(cookie, app=socket_app(permission_recheck_s=0.2))
    await subscribe(socket, "overview")
    permission = await database_sync_to_async(Permission.objects.get)(codename="view_command_center")
    await database_sync_to_async(system_admin.user_permissions.remove)(permission)
    assert await close_code(socket) == 4403


@pytest.mark.django_db(transaction=True)
async def test_a_logged_out_session_is_disconnected_with_4401(superuser):
    socket, _ = await open_socket(await session_cookie(superuser), app=socket_app(permission_recheck_s=0.2))
    await subscribe(socket, "voice")
    await database_sync_to_async(Session.objects.all().delete)()
    assert await close_code(socket) == 4401


@pytest.mark.django_db(transaction=True)
async def test_an_admin_who_keeps_the_permission_stays_connected(system_admin):
    cookie = await session_cookie(system_admin)
    socket, _ = await open_socket(cookie, app=socket_app(permission_recheck_s=0.1))
    await subscribe(socket, "overview")
    assert await socket.receive_nothing(timeout=0.6)  # several re-checks passed
    await publish(push.health_change("api", "healthy", "degraded", None))
    assert (await socket.receive_json_from(timeout=5))["type"] == push.HEALTH_CHANGE
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_subscriptions_mark_presence_until_the_socket_goes(superuser):
    socket, _ = await open_socket(await session_cookie(superuser))
    await subscribe(socket, "overview")
    assert await asyncio.to_thread(presence.is_watched, push.VITAL_SIGNS)
    assert not await asyncio.to_thread(presence.is_watched, push.VOICE_PULSE)

    await subscribe(socket, "voice")
    assert await asyncio.to_thread(presence.is_watched, push.VOICE_PULSE)
    await subscribe(socket, "voice", action="unsubscribe")
    assert not await asyncio.to_thread(presence.is_watched, push.VOICE_PULSE)

    await socket.disconnect()
    assert not await asyncio.to_thread(presence.is_watched, push.VITAL_SIGNS)


async def test_channel_layer_reads_outlast_its_blocking_wait():
    layer = get_channel_layer()
    pool = layer.connection(0).connection_pool
    read_timeout = pool.connection_class(**pool.connection_kwargs).socket_timeout  # built, not connected
    assert read_timeout is None or read_timeout > layer.brpop_timeout


@pytest.mark.django_db(transaction=True)
async def test_a_socket_outlives_a_quiet_channel_layer(system_admin):
    # redis-py 8 times reads out after 5 s, as long as channels_redis blocks waiting for a message: a socket
    # whose web process gets no event for that long must not crash (daphne would close it with 1011).
    socket, _ = await open_socket(await session_cookie(system_admin))
    await subscribe(socket, "infrastructure")
    assert await socket.receive_nothing(timeout=7)
    await publish(push.health_change("redis", "healthy", "down", None))
    assert (await socket.receive_json_from(timeout=5))["type"] == push.HEALTH_CHANGE
    await socket.disconnect()


async def test_a_read_timing_out_as_the_consumer_is_cancelled_ends_it():
    # A Redis read whose deadline fires as the task is cancelled may surface as a timeout, not a cancellation:
    # asked again, the consumer would never end and the event loop shutting it down would wait for ever.
    async def read_turning_cancellation_into_timeout() -> dict:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise redis.exceptions.TimeoutError("Timeout reading from socket") from None
        return {}

    reading = asyncio.create_task(patient_receive(read_turning_cancellation_into_timeout)())
    await asyncio.sleep(0)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(reading, timeout=2)


async def test_a_read_that_merely_times_out_is_asked_again():
    answers = iter([redis.exceptions.TimeoutError("Timeout reading from socket"), {"type": "push.event"}])

    async def read() -> dict:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await patient_receive(read)() == {"type": "push.event"}


def drop_channel_layer_connections() -> int:
    """Close, from the Redis side, the connections blocked in the layer's wait for a message (as a Redis
    restart does), and only those of this test's database."""
    admin = redis.Redis.from_url(settings.REDIS_URL)
    database = admin.connection_pool.connection_kwargs.get("db", 0)
    waiting = [client["id"] for client in admin.client_list()
               if client["cmd"] == "bzpopmin" and int(client["db"]) == database]
    for client_id in waiting:
        admin.client_kill_filter(_id=client_id)
    return len(waiting)


def channel_layer_readers() -> int:
    """Connections of this test's Redis database blocked in the channel layer's wait for a message."""
    admin = redis.Redis.from_url(settings.REDIS_URL)
    database = admin.connection_pool.connection_kwargs.get("db", 0)
    return sum(client["cmd"] == "bzpopmin" and int(client["db"]) == database for client in admin.client_list())


@pytest.mark.django_db(transaction=True)
async def test_the_channel_layer_is_read_only_once_a_socket_joins_a_group(system_admin):
    refused, _ = await open_socket()
    assert await close_code(refused) == 4401
    socket, _ = await open_socket(await session_cookie(system_admin))
    await asyncio.sleep(0.3)
    assert await asyncio.to_thread(channel_layer_readers) == 0  # neither socket waits on Redis yet

    await subscribe(socket, "infrastructure")
    await asyncio.sleep(0.3)
    assert await asyncio.to_thread(channel_layer_readers) >= 1
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_socket_whose_channel_layer_loses_redis_is_closed_as_a_service_restart(system_admin, caplog):
    socket, _ = await open_socket(await session_cookie(system_admin))
    await subscribe(socket, "infrastructure")
    await asyncio.sleep(0.3)  # the consumer is waiting in the layer's blocking read

    assert await asyncio.to_thread(drop_channel_layer_connections) >= 1

    assert await close_code(socket) == CLOSE_SERVICE_RESTART  # not an exception out of the application
    assert "the channel layer lost Redis" in caplog.text


@database_sync_to_async
def rename_table(old: str, new: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {old} RENAME TO {new}")


@pytest.mark.django_db(transaction=True)
async def test_a_re_check_that_fails_for_a_moment_keeps_the_socket_open(system_admin, caplog):
    cookie = await session_cookie(system_admin)
    socket, _ = await open_socket(cookie, app=socket_app(permission_recheck_s=0.1, permission_grace_s=30))
    await subscribe(socket, "infrastructure")
    await rename_table("django_session", "django_session_away")  # the re-check's query fails for real
    try:
        assert await socket.receive_nothing(timeout=0.6)
    finally:
        await rename_table("django_session_away", "django_session")
    assert "socket permission re-check failed" in caplog.text
    assert await socket.receive_nothing(timeout=0.3)  # checks pass again
    await publish(push.health_change("postgresql", "down", "healthy", None))
    assert (await socket.receive_json_from(timeout=5))["type"] == push.HEALTH_CHANGE
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_re_check_that_keeps_failing_closes_the_socket_with_1011(system_admin):
    cookie = await session_cookie(system_admin)
    socket, _ = await open_socket(cookie, app=socket_app(permission_recheck_s=0.1, permission_grace_s=0.5))
    await subscribe(socket, "infrastructure")
    await rename_table("django_session", "django_session_away")
    try:
        assert await close_code(socket) == CLOSE_CHECK_FAILED
    finally:
        await rename_table("django_session_away", "django_session")
