"""Bounded gzip decompression: a gzip bomb costs about the cap in memory, never the bomb's size."""

import zlib

from telemetry.otlp.errors import InvalidPayload, PayloadTooLarge

_GZIP_ONLY = 31  # zlib wbits: 16 (gzip header and trailer) + 15 (largest window)
# Small steps keep zlib's transient buffers (output being built, unconsumed input copies) small.
_INPUT_STEP = 64 * 1024
_OUTPUT_STEP = 1024 * 1024


class _BoundedOutput:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.chunks: list[bytes] = []

    def room(self) -> int:
        # One byte past the budget is how an oversized body is detected.
        return min(self.max_bytes - self.size + 1, _OUTPUT_STEP)

    def append(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise PayloadTooLarge(f"gzip body decompresses to more than {self.max_bytes} bytes")
        self.chunks.append(chunk)


def gunzip_bounded(data: bytes, max_bytes: int) -> bytes:
    """Decompress a gzip body (one or more members) whose output must not exceed `max_bytes`."""
    if not data:
        raise InvalidPayload("gzip body is empty")
    output = _BoundedOutput(max_bytes)
    remaining = memoryview(data)
    while remaining:
        remaining = _inflate_member(remaining, output)
    return b"".join(output.chunks)


def _inflate_member(data: memoryview, output: _BoundedOutput) -> memoryview:
    """Inflate the gzip member at the start of `data`; return the bytes after it."""
    decompressor = zlib.decompressobj(wbits=_GZIP_ONLY)
    for start in range(0, len(data), _INPUT_STEP):
        pending: bytes | memoryview = data[start : start + _INPUT_STEP]
        while True:
            try:
                chunk = decompressor.decompress(pending, output.room())
            except zlib.error as exc:
                raise InvalidPayload(f"gzip body is corrupt: {exc}") from None
            output.append(chunk)
            if decompressor.eof:
                consumed = start + min(len(data) - start, _INPUT_STEP) - len(decompressor.unused_data)
                return data[consumed:]
            pending = decompressor.unconsumed_tail
            # With the input step used up, zlib may still hold output it had no room for: drain it.
            if not pending and not chunk:
                break
    raise InvalidPayload("gzip body is truncated")
