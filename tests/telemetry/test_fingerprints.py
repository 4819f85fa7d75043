"""Error-group fingerprints: templates by hand, digests by hand, stable across processes, and PostgreSQL's
twin of the template (`sql_template`) agreeing with Python's."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.fingerprints import (
    Fingerprint,
    Source,
    fingerprint_hex,
    fingerprint_int,
    span_message,
    sql_template,
    template,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("text", "expected"), [
    ("pool exhausted (3960 waiting)", "pool exhausted (<n> waiting)"),
    ("pool exhausted (641 waiting)", "pool exhausted (<n> waiting)"),
    ("took 1,234.5 ms", "took <n> ms"),
    ("guild 3f2504e0-4f89-11d3-9a0c-0305e82c3301 gone", "guild <uuid> gone"),
    ("frame 0x7F3a dropped", "frame <hex> dropped"),
    ("object 5e8f2c1ab9 missing", "object <hex> missing"),
    ("object 5E8F2C1AB9 missing", "object <hex> missing"),
    # A hex-looking word without a digit is a word; a short hex run holding digits is a number-ish word.
    ("deadbeef cafe", "deadbeef cafe"),
    ("shard-12 of s3", "shard-<n> of s<n>"),
    ("x_12345678", "x_<n>"),
    # The scrubber's placeholders stay as they are.
    ("login by [email] from [ip]: Bearer [redacted]", "login by [email] from [ip]: Bearer [redacted]"),
    ("", ""),
])
def test_template_turns_ids_and_numbers_into_placeholders(text, expected):
    assert template(text) == expected


def test_the_fingerprint_is_a_blake2b_digest_of_the_normalised_parts():
    fingerprint = Fingerprint.of(Source.LOG, "vc-server", "db.pool", "pool exhausted (3960 waiting)")
    by_hand = hashlib.blake2b(b"log\x1fvc-server\x1fdb.pool\x1fpool exhausted (<n> waiting)", digest_size=8)
    assert fingerprint.as_hex == by_hand.hexdigest() == "1c4263eb867a4019"
    assert fingerprint.as_int == int.from_bytes(by_hand.digest(), "big", signed=True)
    assert fingerprint_hex(fingerprint.as_int) == fingerprint.as_hex
    assert fingerprint_int(fingerprint.as_hex) == fingerprint.as_int


@pytest.mark.parametrize(("first", "second"), [
    ("pool exhausted (3960 waiting)", "pool exhausted (641 waiting)"),
    ("guild 3f2504e0-4f89-11d3-9a0c-0305e82c3301 gone", "guild 9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d gone"),
    ("frame 0x7f3a dropped", "frame 0xdeadbeef01 dropped"),
    ("object 5e8f2c1ab9 missing", "object 00112233445566 missing"),
    ("retry 3 of 5 after 1.5 s", "retry 4 of 5 after 12.25 s"),
])
def test_messages_differing_only_in_numbers_and_ids_share_a_fingerprint(first, second):
    assert Fingerprint.of(Source.LOG, "vc-server", "e", first) == Fingerprint.of(Source.LOG, "vc-server", "e", second)
    assert Fingerprint.of(Source.LOG, "vc-server", "e", first).as_hex == (
        Fingerprint.of(Source.LOG, "vc-server", "e", second).as_hex)


@pytest.mark.parametrize(("first", "second"), [
    (("log", "vc-server", "db.pool", "pool exhausted (1 waiting)"), ("log", "vc-server", "db.pool", "pool closed (1)")),
    (("log", "vc-server", "db.pool", "pool exhausted"), ("log", "vc-worker", "db.pool", "pool exhausted")),
    (("log", "vc-server", "db.pool", "pool exhausted"), ("log", "vc-server", "db.query", "pool exhausted")),
    (("log", "vc-server", "GET /x", "status 500"), ("span", "vc-server", "GET /x", "status 500")),
    # The separator keeps the parts apart: moving text from one part to the next is another group.
    (("log", "vc-server", "a b", "c"), ("log", "vc-server", "a", "b c")),
])
def test_different_templates_services_events_or_sources_are_different_groups(first, second):
    assert Fingerprint.of(*first).as_hex != Fingerprint.of(*second).as_hex


def test_span_message_names_the_status():
    assert span_message("503") == "status 503"
    assert template(span_message("503")) == template(span_message("500")) == "status <n>"
    assert template(span_message("ERROR")) == "status ERROR"


def test_fingerprint_int_refuses_what_is_not_16_hex_digits():
    for bad in ("", "1c4263eb867a401", "1C4263EB867A4019", "1c4263eb867a4019a", "zz4263eb867a4019"):
        with pytest.raises(ValueError, match="16 lower-case hex"):
            fingerprint_int(bad)


def test_the_fingerprint_is_the_same_in_another_process_with_another_hash_seed():
    script = ("from telemetry.fingerprints import Fingerprint, Source;"
              "print(Fingerprint.of(Source.LOG, 'vc-server', 'db.pool', 'pool exhausted (12 waiting)').as_hex)")
    outputs = {
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2", "random")
    }
    assert outputs == {"1c4263eb867a4019"}


_PIECES = st.sampled_from([
    "0x1f", "0XAB", "deadbeef", "cafe1234beef", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "12", "1,234.5", "1.",
    ",5", "v2", "x_9", "abc", " ", "-", "(", ")", "_", "é", "日本", "[uuid]", "a1b2c3d4e5", "00000000", "g1234567",
])


@pytest.mark.django_db
@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_postgresql_applies_the_same_template_rules(text):
    sql, params = sql_template("%s::text")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", [text, *params])
        assert cursor.fetchone()[0] == template(text)
