"""The Command Center socket `/ws/admin/observability/`: live `admin.observability.*` events for admins.

Protocol (also in docs/TEAM_NOTES.md): the page subscribes to panels with
`{"type": "subscribe", "panels": [...]}` (and `unsubscribe`); every frame the server sends carries `type`,
`ts` and a per-connection `seq` that grows by one, so the page can spot a gap and refetch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace
from typing import Literal

import redis.exceptions
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user

from command_center import presence, push
from command_center.permissions import can_view_command_center

logger = logging.getLogger(__name__)

CLOSE_NOT_LOGGED_IN = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_CHECK_FAILED = 1011
CLOSE_SERVICE_RESTART = 1012  # the channel layer lost Redis: the page reconnects and shows the outage
CHANNEL_LAYER_LOST = "channel_layer.lost"
MAX_FRAME_BYTES = 4096
# A re-check that fails (database briefly unreachable, pool exhausted) keeps the last answer, and is retried at
# every heartbeat, for this long before the socket is closed with CLOSE_CHECK_FAILED.
PERMISSION_GRACE_S = 60.0
# channels_redis's pool (redis-py) holds at most 100 connections and fails, not waits, beyond that; when a
# web process restarts, every page reconnects at once, so membership changes take turns.
MAX_CONCURRENT_MEMBERSHIP_CHANGES = 32
_membership_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())


def _membership_slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slot = _membership_slots.get(loop)
    if slot is None:
        slot = _membership_slots[loop] = asyncio.Semaphore(MAX_CONCURRENT_MEMBERSHIP_CHANGES)
    return slot


class FrameError(ValueError):
    """A client frame the socket refuses; `code` goes to the page in an `error` frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SubscriptionRequest:
    action: Literal["subscribe", "unsubscribe"]
    panels: frozenset[str]


def parse_client_frame(text_data: str | None, bytes_data: bytes | None = None) -> SubscriptionRequest:
    """Read one frame sent by the page; raises FrameError saying what is wrong with it."""
    if text_data is None:
        raise FrameError("binary_frame", "send JSON text frames, not binary ones")
    if len(text_data.encode()) > MAX_FRAME_BYTES:
        raise FrameError("frame_too_large", f"frames are limited to {MAX_FRAME_BYTES} bytes")
    try:
        frame = json.loads(text_data)
    except ValueError:
        raise FrameError("malformed_json", "the frame is not valid JSON") from None
    except RecursionError:  # a few thousand nested brackets exhaust the decoder's recursion
        raise FrameError("invalid_frame", "the frame nests too deeply; a frame is one flat JSON object") from None
    if not isinstance(frame, dict):
        raise FrameError("invalid_frame", 'a frame is a JSON object: {"type": "subscribe", "panels": [...]}')
    action = frame.get("type")
    if action not in ("subscribe", "unsubscribe"):
        raise FrameError("unknown_type", f"type must be 'subscribe' or 'unsubscribe', not {_quote(action)}")
    panels = frame.get("panels")
    if not isinstance(panels, list) or not panels or not all(isinstance(panel, str) for panel in panels):
        raise FrameError("invalid_frame", "panels must be a non-empty list of panel names")
    unknown = sorted(set(panels) - push.PANEL_TOPICS.keys())
    if unknown:
        named, known = ", ".join(_quote(name) for name in unknown[:3]), ", ".join(sorted(push.PANEL_TOPICS))
        raise FrameError("unknown_panel", f"unknown panel(s) {named}; known: {known}")
    return SubscriptionRequest(action=action, panels=frozenset(panels))


def _quote(value: object) -> str:
    """A client-supplied value, bounded, for an error message."""
    return repr(value)[:40]


class ErrorStormLimiter:
    """At most `limit` error_events per one-second window on a connection; the rest are held and reported
    together as one error_burst when the window ends."""

    def __init__(self, limit: int = push.ERROR_EVENTS_PER_SECOND, window_s: float = 1.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._window_start = float("-inf")
        self._sent_in_window = 0
        self._held_count = 0
        self._held_since: str | None = None

    def admit(self, now: float) -> bool:
        """May one more error_event be sent at `now` (monotonic seconds)?"""
        if now - self._window_start >= self.window_s:
            self._window_start, self._sent_in_window = now, 0
        if self._sent_in_window < self.limit:
            self._sent_in_window += 1
            return True
        return False

    def hold(self, count: int, since: str) -> None:
        """Count `count` errors (the earliest at ISO time `since`) for the next error_burst."""
        if count <= 0:
            return
        self._held_count += count
        self._held_since = since if self._held_since is None else min(self._held_since, since)

    @property
    def holding(self) -> bool:
        return self._held_count > 0

    def seconds_until_window_end(self, now: float) -> float:
        return max(0.0, self._window_start + self.window_s - now)

    def take_burst(self) -> tuple[int, str] | None:
        """The held (count, since), resetting it; None when nothing was held."""
        if not self._held_count or self._held_since is None:
            return None
        burst = (self._held_count, self._held_since)
        self._held_count, self._held_since = 0, None
        return burst


def patient_receive(receive: Callable[[], Awaitable[dict]], ready: asyncio.Event | None = None
                    ) -> Callable[[], Awaitable[dict]]:
    """`receive` (the channel layer's) asked again when its Redis read times out, and a lost Redis said once;
    asked only once `ready` is set (the consumer sets it when the socket joins its first group).

    Nothing reaches a socket through the layer before it joins a group, and a socket refused at connect (closed
    with 4401 or 4403 at once) is then never read for: cancelling a layer read that was still setting up its
    Redis connection was seen to be lost now and then (the read went on, and the event loop ending the socket
    waited for it for ever).

    channels_redis blocks 5 s in BZPOPMIN waiting for a message, and redis-py (since 8) gives up reading after
    5 s too: when the web process gets no event for 5 s, the read may time out instead of answering "nothing".
    Unhandled, that ends the consumer and daphne closes the socket with 1011. A Redis that refuses connections
    or drops them (a restart) is handed to the consumer as one `channel_layer.lost` message, which closes the
    socket with CLOSE_SERVICE_RESTART (the page reconnects and sees the outage); an exception out of the
    application would be logged by daphne as a server error. After that the layer is not read again.
    """
    lost = False

    async def receive_next() -> dict:
        nonlocal lost
        if ready is not None:
            await ready.wait()
        while not lost:
            try:
                return await receive()
            except redis.exceptions.TimeoutError:
                # A read that times out while the consumer is being cancelled may be the cancellation itself,
                # turned into a timeout by the read's own deadline: asking again would swallow it, and the
                # socket's task (and the event loop shutting it down) would never end.
                if (task := asyncio.current_task()) is not None and task.cancelling():
                    raise asyncio.CancelledError from None
                logger.debug("channel layer read timed out with nothing received; waiting again")
            except redis.exceptions.ConnectionError as error:
                lost = True
                return {"type": CHANNEL_LAYER_LOST, "error": f"{type(error).__name__}: {error}"}
        await asyncio.Event().wait()  # until the consumer ends (the socket closes); cancelled then
        raise AssertionError("unreachable")

    return receive_next


def _session_store(session_key: str | None):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


class ObservabilityConsumer(AsyncWebsocketConsumer):
    def __init__(self, permission_recheck_s: float = 30.0, heartbeat_s: float = 10.0,
                 permission_grace_s: float = PERMISSION_GRACE_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.permission_recheck_s = permission_recheck_s
        self.heartbeat_s = heartbeat_s
        self.permission_grace_s = permission_grace_s
        self.clock = clock
        self.panels: frozenset[str] = frozenset()
        self.topics: frozenset[str] = frozenset()
        self.limiter = ErrorStormLimiter()
        self._seq = 0
        self._send_lock = asyncio.Lock()
        self._heartbeat_task: asyncio.Task | None = None
        self._burst_task: asyncio.Task | None = None
        self._joined_a_group = asyncio.Event()

    # AsyncConsumer.__call__ sets this to the channel layer's receive and reads events through it.
    @property
    def channel_receive(self) -> Callable[[], Awaitable[dict]]:
        return self._channel_receive

    @channel_receive.setter
    def channel_receive(self, receive: Callable[[], Awaitable[dict]]) -> None:
        self._channel_receive = patient_receive(receive, self._joined_a_group)

    # --- connection life -------------------------------------------------------------------------------

    async def connect(self) -> None:
        # Accept first, then close with our own code: a refused handshake reaches the browser only as 1006.
        await self.accept()
        code = await self._denial_code(self.scope.get("user"))
        if code is not None:
            await self.close(code)
            return
        self._heartbeat_task = asyncio.create_task(self._heartbeat())

    async def disconnect(self, code: int) -> None:
        for task in (self._heartbeat_task, self._burst_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        try:
            await self._set_panels(frozenset())
        except Exception as error:  # Redis gone: group membership and presence expire on their own
            logger.warning("socket clean-up failed: %s: %s", type(error).__name__, error)

    async def _shut(self, code: int) -> None:
        await self._set_panels(frozenset())
        await self.close(code)

    @database_sync_to_async
    def _denial_code(self, user: object) -> int | None:
        if user is None or not getattr(user, "is_authenticated", False):
            return CLOSE_NOT_LOGGED_IN
        return None if can_view_command_center(user) else CLOSE_FORBIDDEN

    @database_sync_to_async
    def _current_user(self) -> object:
        """The session's user as of now: a logged-out session, a changed password or a deactivated user
        all give AnonymousUser, exactly as for a page request."""
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None)
        return get_user(SimpleNamespace(session=_session_store(session_key)))

    async def _heartbeat(self) -> None:
        tick_s = min(self.heartbeat_s, self.permission_recheck_s)
        next_check = self.clock() + self.permission_recheck_s
        failing_since: float | None = None
        while True:
            await asyncio.sleep(tick_s)
            if self.clock() >= next_check:
                try:
                    code = await self._denial_code(await self._current_user())
                except Exception as error:  # the admin's last answer stands for a while; retried every tick
                    failing_since = self.clock() if failing_since is None else failing_since
                    failed_for = self.clock() - failing_since
                    logger.warning("socket permission re-check failed for %.0f s: %s: %s", failed_for,
                                   type(error).__name__, error)
                    code = CLOSE_CHECK_FAILED if failed_for >= self.permission_grace_s else None
                else:
                    failing_since = None
                next_check = self.clock() + (tick_s if failing_since is not None else self.permission_recheck_s)
                if code is not None:
                    await self._shut(code)
                    return
            try:
                await self._refresh_membership()
            except Exception as error:  # Redis blips: keep the socket, the next tick tries again
                logger.warning("socket presence refresh failed: %s: %s", type(error).__name__, error)

    # --- subscriptions -----------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            request = parse_client_frame(text_data, bytes_data)
        except FrameError as error:
            await self._emit({"type": "error", "ts": push.iso_utc(None), "code": error.code,
                              "message": error.message})
            return
        if request.action == "subscribe":
            await self._set_panels(self.panels | request.panels)
        else:
            await self._set_panels(self.panels - request.panels)
        await self._emit({"type": "subscribed", "ts": push.iso_utc(None), "panels": sorted(self.panels)})

    async def _set_panels(self, panels: frozenset[str]) -> None:
        topics = frozenset().union(*(push.PANEL_TOPICS[panel] for panel in panels))
        joined, left = topics - self.topics, self.topics - topics
        self.panels, self.topics = panels, topics
        async with _membership_slot():
            for topic in sorted(left):
                await self.channel_layer.group_discard(topic, self.channel_name)
                if topic in push.TICKING_TOPICS:
                    await asyncio.to_thread(presence.mark_absent, topic, self.channel_name)
            for topic in sorted(joined):
                await self.channel_layer.group_add(topic, self.channel_name)
                if topic in push.TICKING_TOPICS:
                    await asyncio.to_thread(presence.mark_present, topic, self.channel_name)
        if joined:
            self._joined_a_group.set()

    async def _refresh_membership(self) -> None:
        """Keep presence alive and renew group membership, which the channel layer expires after a day."""
        async with _membership_slot():
            for topic in sorted(self.topics):
                await self.channel_layer.group_add(topic, self.channel_name)
                if topic in push.TICKING_TOPICS:
                    await asyncio.to_thread(presence.mark_present, topic, self.channel_name)

    # --- events from the channel layer ---------------------------------------------------------------------

    async def channel_layer_lost(self, message: dict) -> None:
        logger.warning("socket closed: the channel layer lost Redis: %s", message["error"])
        await self.close(CLOSE_SERVICE_RESTART)

    async def push_event(self, message: dict) -> None:
        event = message["event"]
        if event["type"] in self.topics:  # an event queued before an unsubscribe is not shown
            await self._emit(event)

    async def push_errors(self, message: dict) -> None:
        if push.ERROR_EVENT not in self.topics:
            return
        for event in message["events"]:
            if self.limiter.admit(self.clock()):
                await self._emit(event)
            else:
                self.limiter.hold(1, event["ts"])
        if message["coalesced"]:
            self.limiter.hold(message["coalesced"], message["coalesced_since"])
        if self.limiter.holding and (self._burst_task is None or self._burst_task.done()):
            delay = self.limiter.seconds_until_window_end(self.clock())
            self._burst_task = asyncio.create_task(self._send_burst_after(delay))

    async def _send_burst_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        burst = self.limiter.take_burst()
        if burst is not None and push.ERROR_EVENT in self.topics:
            await self._emit(push.error_burst(*burst))

    async def _emit(self, frame: dict) -> None:
        # One lock so that seq order is send order even when a timer task and a handler both send.
        async with self._send_lock:
            self._seq += 1
            await self.send(text_data=json.dumps({**frame, "seq": self._seq}))
