"""Error-group fingerprints: the one definition of "the same error" (issue 16, item 2).

An error belongs to a group named by its source (an ERROR log or a failed span), its service, and the
*templates* of its event name and message: the text with ids and numbers turned into placeholders, so
"pool exhausted (3960 waiting)" and "pool exhausted (641 waiting)" are one group. The texts arrive here
already scrubbed (contract section 8): e-mails, IPs, UUIDs and long secrets are placeholders by then.

`TEMPLATE_RULES` is written in the regular-expression syntax that Python's `re` and PostgreSQL's ARE read
alike (explicit classes and lookarounds, no `\\b`, `\\d` or flags), so the read side can select the records of a
group in SQL with the very same rules (`sql_template`) instead of a second definition that could drift.

The fingerprint is a 64-bit BLAKE2b digest of the normalised parts: the same in every process and after
every restart (never Python's salted `hash()`). It is stored as a signed bigint (`fingerprint_int`) and shown
as 16 lower-case hex digits (`fingerprint_hex`); the live feed of the page keys its rows by that text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

_WORD_CHAR = "[0-9A-Za-z_]"
# (pattern, placeholder), applied in this order to the whole text, every match replaced.
TEMPLATE_RULES: tuple[tuple[str, str], ...] = (
    # A UUID (the scrubber's "[uuid]" covers stored texts; a span name or event may still carry one).
    ("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<uuid>"),
    # A hex id: 0x..., or a standalone run of 8+ hex digits holding at least one digit ("deadbeef" is a word).
    (f"0[xX][0-9a-fA-F]+|(?<!{_WORD_CHAR})(?=[a-fA-F]*[0-9])[0-9a-fA-F]{{8,}}(?!{_WORD_CHAR})", "<hex>"),
    # Any other number, with its decimal or thousands separators ("3,960", "1.5").
    ("[0-9]+(?:[.,][0-9]+)*", "<n>"),
)
_COMPILED = tuple((re.compile(pattern), placeholder) for pattern, placeholder in TEMPLATE_RULES)
_SEPARATOR = "\x1f"
_DIGEST_BYTES = 8
FINGERPRINT_HEX = re.compile(r"^[0-9a-f]{16}$")


class Source(StrEnum):
    """Where the errors of a group come from."""

    LOG = "log"  # ERROR log records
    SPAN = "span"  # kept spans that failed (status ERROR or HTTP 5xx)


def template(text: str) -> str:
    """`text` with its ids and numbers replaced by `<uuid>`, `<hex>` and `<n>`."""
    for pattern, placeholder in _COMPILED:
        text = pattern.sub(placeholder, text)
    return text


def sql_template(expression: str) -> tuple[str, list[str]]:
    """SQL applying TEMPLATE_RULES to the text `expression`, and its parameters (in order): PostgreSQL's
    twin of `template`, used to select the records of a group."""
    sql, params = expression, []
    for pattern, placeholder in TEMPLATE_RULES:
        sql = f"regexp_replace({sql}, %s, %s, 'g')"
        params += [pattern, placeholder]
    return sql, params


def span_message(status_code: str) -> str:
    """The message a failed span stands for: its status ("status 503", "status ERROR")."""
    return f"status {status_code}"


@dataclass(frozen=True)
class Fingerprint:
    """What names a group: source, service and the templates of the event name and the message."""

    source: Source
    service: str
    event_template: str
    message_template: str

    @classmethod
    def of(cls, source: Source, service: str, event: str, message: str) -> Fingerprint:
        return cls(Source(source), service, template(event), template(message))

    @property
    def digest(self) -> bytes:
        parts = (self.source.value, self.service, self.event_template, self.message_template)
        return hashlib.blake2b(_SEPARATOR.join(parts).encode(), digest_size=_DIGEST_BYTES).digest()

    @property
    def as_int(self) -> int:
        return int.from_bytes(self.digest, "big", signed=True)

    @property
    def as_hex(self) -> str:
        return self.digest.hex()


def fingerprint_hex(value: int) -> str:
    """The 16-hex-digit text of a stored (signed 64-bit) fingerprint."""
    return (value & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(_DIGEST_BYTES, "big").hex()


def fingerprint_int(text: str) -> int:
    """The stored (signed 64-bit) form of a 16-hex-digit fingerprint; ValueError when it is not one."""
    if not FINGERPRINT_HEX.fullmatch(text):
        raise ValueError("must be 16 lower-case hex characters")
    return int.from_bytes(bytes.fromhex(text), "big", signed=True)
