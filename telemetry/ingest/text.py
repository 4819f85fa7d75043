"""Text as PostgreSQL can store it, and scrubbing that remembers repeated texts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

from telemetry.contract import scrub

# Error storms repeat the same messages; longer texts are rarely repeated and would crowd the memory.
_SCRUB_MEMO_MAX_LENGTH = 512
_SCRUB_MEMO_ENTRIES = 8192


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class MemoCache(Generic[K, V]):
    """A bounded memo of a pure function's results: emptied when full (cheaper than LRU bookkeeping on
    every hit, and a storm refills the few entries that matter within one request)."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: dict[K, V] = {}
        self._lock = threading.Lock()

    def get_or_compute(self, key: K, compute: Callable[[K], V]) -> V:
        """The remembered `compute(key)`."""
        value = self._entries.get(key, _MISSING)
        if value is _MISSING:
            value = compute(key)
            with self._lock:
                if len(self._entries) >= self._max_entries:
                    self._entries.clear()
                self._entries[key] = value
        return value


_MISSING: object = object()
_scrub_memo = MemoCache[str, str](max_entries=_SCRUB_MEMO_ENTRIES)


def scrubbed(text: str) -> str:
    """`contract.scrub(text)`, remembered for short texts."""
    if len(text) > _SCRUB_MEMO_MAX_LENGTH:
        return scrub(text)
    return _scrub_memo.get_or_compute(text, scrub)


def storable(text: str) -> str:
    """PostgreSQL text and jsonb cannot hold NUL characters; a sender's stray NUL must not fail a batch."""
    return text.replace("\x00", "") if "\x00" in text else text


def storable_values(values: Mapping[str, str]) -> dict[str, str]:
    return {key: storable(value) for key, value in values.items()}
