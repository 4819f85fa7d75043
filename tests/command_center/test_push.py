"""Publishers of the push events: payload shapes, storm compaction, presence gating and the signal wiring,
all through the real Redis channel layer."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from channels.layers import get_channel_layer

from command_center import presence, push
from command_center.push_tasks import publish_live_panels
from command_center.signals import health_changed
from telemetry.signals import error_logs_ingested

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(autouse=True)
def isolated_channel_layer(settings):
    layers = json.loads(json.dumps(settings.CHANNEL_LAYERS))
    layers["default"]["CONFIG"]["prefix"] = f"test-push-{uuid.uuid4().hex[:12]}"
    settings.CHANNEL_LAYERS = layers


async def listen(topic: str) -> str:
    """A channel in `topic`'s group, as a socket would hold."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(topic, channel)
    return channel


async def next_message(channel: str, timeout: float = 3.0) -> dict:
    return await asyncio.wait_for(get_channel_layer().receive(channel), timeout)


async def nothing_arrives(channel: str, within: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(get_channel_layer().receive(channel), within)
    except TimeoutError:
        return True
    return False


def error_row(second: int = 0, **fields) -> dict:
    ts = datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=second)
    return {"ts": ts.isoformat(), "service": "kaiku-api", "domain": "auth", "event": "auth.login_failed",
            "message": "bad credentials", "trace_id": TRACE_ID, "level": "ERROR", **fields}


# --- payloads ------------------------------------------------------------------------------------------

def test_an_error_event_has_exactly_the_design_fields():
    event = push.error_event(error_row(**{"user.email": "a@b.c", "attrs": {"exception.stacktrace": "..."},
                                          "group": "1c4263eb867a4019", "route": "/api/v1/x"}))
    assert event == {"type": push.ERROR_EVENT, "ts": "2026-03-01T12:00:00.000Z", "service": "kaiku-api",
                     "domain": "auth", "event": "auth.login_failed", "message": "bad credentials",
                     "trace_id": TRACE_ID, "group": "1c4263eb867a4019"}


def test_an_error_event_carries_the_group_key_the_receiver_gave_its_row_and_nothing_else_there():
    assert push.error_event(error_row(group="1c4263eb867a4019"))["group"] == "1c4263eb867a4019"
    assert push.error_event(error_row(group="<script>"))["group"] is None
    assert push.error_event(error_row())["group"] is None


def test_an_error_event_never_carries_credentials_or_personal_data():
    event = push.error_event(error_row(
        event="token=abc123def for carol@example.org",
        message="Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl from 192.168.1.20"))
    assert "carol@example.org" not in event["event"] and "abc123def" not in event["event"]
    assert "eyJhbGci" not in event["message"] and "192.168.1.20" not in event["message"]


def test_a_malformed_trace_id_is_dropped_and_a_long_message_cut():
    event = push.error_event(error_row(trace_id="not-a-trace", message="x " * 3000))
    assert event["trace_id"] is None
    assert len(event["message"]) == push.MAX_MESSAGE_CHARS


def test_times_become_utc_with_a_z():
    assert push.iso_utc("2026-03-01T14:00:00+02:00") == "2026-03-01T12:00:00.000Z"
    assert push.iso_utc(datetime(2026, 3, 1, 12, 0, 0, 250000)) == "2026-03-01T12:00:00.250Z"
    assert push.iso_utc("yesterday").endswith("Z")  # unreadable: now, never an exception


def test_vital_signs_keep_the_four_golden_signals_as_finite_numbers_or_none():
    event = push.vital_signs({"latency_p95": 120, "traffic_rate": float("nan"), "error_rate": float("inf"),
                              "extra": 1, "saturation_pct": True}, datetime(2026, 3, 1, tzinfo=UTC))
    assert event == {"type": push.VITAL_SIGNS, "ts": "2026-03-01T00:00:00.000Z", "latency_p95": 120.0,
                     "traffic_rate": None, "error_rate": None, "saturation_pct": None}
    json.dumps(event, allow_nan=False)  # what a browser can parse


def test_voice_pulse_counts_are_integers():
    event = push.voice_pulse({"active_sessions": 12.0, "active_rooms": 4, "join_success_rate_1h": 97.5})
    assert (event["active_sessions"], event["active_rooms"], event["join_success_rate_1h"]) == (12, 4, 97.5)
    assert set(event) == {"type", "ts", "active_sessions", "active_rooms", "join_success_rate_1h"}


# --- publishing ----------------------------------------------------------------------------------------

async def test_a_storm_batch_carries_twenty_events_and_the_count_of_the_rest():
    channel = await listen(push.ERROR_EVENT)
    await asyncio.to_thread(push.publish_error_events, [error_row(second) for second in reversed(range(50))])
    message = await next_message(channel)
    assert message["type"] == "push.errors"
    assert [event["ts"][17:19] for event in message["events"]] == [f"{s:02d}" for s in range(20)]
    assert message["coalesced"] == 30
    assert message["coalesced_since"] == "2026-03-01T12:00:20.000Z"


async def test_an_empty_batch_sends_nothing():
    channel = await listen(push.ERROR_EVENT)
    await asyncio.to_thread(push.publish_error_events, [])
    assert await nothing_arrives(channel)


async def test_publishing_from_inside_an_event_loop_does_not_block_it():
    channel = await listen(push.HEALTH_CHANGE)
    push.publish(push.health_change("s3", "available", "unavailable", None))  # called as sync code would be
    message = await next_message(channel)
    assert message["event"]["new_status"] == "unavailable"


def test_live_panels_do_no_work_while_nobody_watches():
    def unreachable():
        raise AssertionError("a selector ran although no socket watches")

    assert push.publish_live_panels({push.VITAL_SIGNS: unreachable, push.VOICE_PULSE: unreachable}) == []


async def test_live_panels_publish_only_the_watched_topic():
    vitals, voice = await listen(push.VITAL_SIGNS), await listen(push.VOICE_PULSE)
    await asyncio.to_thread(presence.mark_present, push.VITAL_SIGNS, vitals)
    sources = {push.VITAL_SIGNS: lambda: {"latency_p95": 210.0, "traffic_rate": 18.5, "error_rate": 1.2,
                                          "saturation_pct": 44.0},
               push.VOICE_PULSE: lambda: {"active_sessions": 1}}

    assert await asyncio.to_thread(push.publish_live_panels, sources) == [push.VITAL_SIGNS]
    event = (await next_message(vitals))["event"]
    assert (event["type"], event["latency_p95"], event["saturation_pct"]) == (push.VITAL_SIGNS, 210.0, 44.0)
    assert await nothing_arrives(voice)


@pytest.mark.django_db(transaction=True)
async def test_live_panels_read_the_selectors_by_default():
    vitals, voice = await listen(push.VITAL_SIGNS), await listen(push.VOICE_PULSE)
    for topic, channel in ((push.VITAL_SIGNS, vitals), (push.VOICE_PULSE, voice)):
        await asyncio.to_thread(presence.mark_present, topic, channel)

    assert await asyncio.to_thread(push.publish_live_panels) == [push.VITAL_SIGNS, push.VOICE_PULSE]
    assert set((await next_message(vitals))["event"]) == {"type", "ts", *push.VITAL_SIGN_KEYS}
    assert set((await next_message(voice))["event"]) == {"type", "ts", *push.VOICE_PULSE_KEYS}


def test_the_beat_task_is_registered_and_idle_without_watchers():
    from kaiku_ops.celery import app

    assert "command_center.push_tasks.publish_live_panels" in app.tasks
    assert publish_live_panels.apply().get() == []


# --- presence ------------------------------------------------------------------------------------------

def test_presence_expires_when_a_watcher_stops_refreshing():
    presence.mark_present(push.VOICE_PULSE, "socket-a", ttl_s=0.3)
    presence.mark_present(push.VOICE_PULSE, "socket-b", ttl_s=30)
    assert presence.watcher_count(push.VOICE_PULSE) == 2
    time.sleep(0.4)
    assert presence.watcher_count(push.VOICE_PULSE) == 1
    presence.mark_absent(push.VOICE_PULSE, "socket-b")
    assert not presence.is_watched(push.VOICE_PULSE)


# --- signal wiring -------------------------------------------------------------------------------------

async def test_ingested_error_logs_become_error_events():
    channel = await listen(push.ERROR_EVENT)
    await asyncio.to_thread(error_logs_ingested.send, sender=None, rows=[error_row(7)])
    message = await next_message(channel)
    assert [event["ts"] for event in message["events"]] == ["2026-03-01T12:00:07.000Z"]


async def test_health_transitions_become_health_changes():
    channel = await listen(push.HEALTH_CHANGE)
    ts = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    await asyncio.to_thread(health_changed.send, sender=None, service="postgresql", old_status="healthy",
                            new_status="down", ts=ts)
    event = (await next_message(channel))["event"]
    assert event == {"type": push.HEALTH_CHANGE, "ts": "2026-03-01T09:30:00.000Z", "service": "postgresql",
                     "old_status": "healthy", "new_status": "down"}


def test_a_push_failure_never_fails_the_ingest_request(settings, caplog):
    layers = json.loads(json.dumps(settings.CHANNEL_LAYERS))
    layers["default"]["CONFIG"]["hosts"] = ["redis://127.0.0.1:9/0"]  # nothing listens on the discard port
    settings.CHANNEL_LAYERS = layers
    with caplog.at_level(logging.WARNING, logger="command_center.push"):
        error_logs_ingested.send(sender=None, rows=[error_row()])
        health_changed.send(sender=None, service="api", old_status="healthy", new_status="down", ts=None)
    assert [record.getMessage().split(":")[0] for record in caplog.records] == [
        "error_event push failed", "health_change push failed"]
