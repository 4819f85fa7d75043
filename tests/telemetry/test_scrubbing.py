"""scrub(): personal data and credentials never survive; ordinary operator prose survives unchanged."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.contract import scrub

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

# (text, the secret part that must not survive, the expected result)
PII_CORPUS = [
    ("Authorization: Bearer abc123.def-456_ghi", "abc123", "Authorization: Bearer [redacted]"),
    ("auth header was Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpw", "auth header was Basic [redacted]"),
    ("BEARER 9f8e7d6c5b4a", "9f8e7d6c5b4a", "BEARER [redacted]"),
    (f"refresh failed for {JWT} today", "eyJhbGci", "refresh failed for [jwt] today"),
    ("GET /login?password=hunter2&next=/home", "hunter2", "GET /login?[redacted]"),
    ("login with password=hunter2 failed", "hunter2", "login with password=[redacted] failed"),
    (
        'body {"password": "hunter2", "name": "ok"}',
        "hunter2",
        'body {"password": "[redacted]", "name": "ok"}',
    ),
    ("body {'api_key': 'k-123'}", "k-123", "body {'api_key': '[redacted]'}"),
    (r"escaped {\"token\": \"tk_live_42\"}", "tk_live_42", r"escaped {\"token\": \"[redacted]\"}"),
    ("client_secret=s3cr3t&x=1 ok", "s3cr3t", "client_secret=[redacted]&x=1 ok"),
    ("X-Api-Key=AKIA1234 rejected", "AKIA1234", "X-Api-Key=[redacted] rejected"),
    ("cache key=user:42 missed", "user:42", "cache key=[redacted] missed"),
    ("secret = topsecret", "topsecret", "secret = [redacted]"),
    ("invite sent to jane.doe+kaiku@example.co.uk.", "jane.doe", "invite sent to [email]."),
    ("peer 203.0.113.7:443 reset", "203.0.113.7", "peer [ip]:443 reset"),
    ("from 2001:db8:85a3::8a2e:370:7334 via ::1", "8a2e", "from [ip] via [ip]"),
    ("full fe80:0:0:0:202:b3ff:fe1e:8329 link", "fe1e", "full [ip] link"),
    ("from 2001:db8::ff: invalid credentials", "db8", "from [ip]: invalid credentials"),
    ("peer [fe80::1]:443 and fe80::2:, done", "fe80", "peer [[ip]]:443 and [ip]:, done"),
    ("mapped ::ffff:192.0.2.128 seen", "192.0.2", "mapped [ip] seen"),
    ("embedded 0:0:0:0:0:ffff:192.0.2.1 seen", "192.0.2", "embedded [ip] seen"),
    ("session 123e4567-e89b-12d3-a456-426614174000 ended", "426614174000", "session [uuid] ended"),
    (
        "signing key 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "9f86d0",
        "signing key [secret]",
    ),
    ("aws AKIAIOSFODNN7EXAMPLEwJalrXUtnFEMIK7MDENGbPxRfiCY", "AKIAIOSF", "aws [secret]"),
    ("GET /api/v1/search?q=jane&page=2 200", "jane", "GET /api/v1/search?[redacted] 200"),
]

ORDINARY_PROSE = [
    "User joined room general at 10:04",
    "timeout after 30s talking to the database",
    "upgraded server from 1.4.2 to 1.5.0 at 2024-05-01T10:04:05Z",
    "request took 250ms (p95 1.2s), retrying in 5 minutes",
    "Basic plan limits reached; the bearer of this news is the scheduler",
    "monkey=3 hotkey=F5 max_tokens=100 token_count=7",
    "metric kaiku_http_request_duration_seconds_bucket has 14 buckets",
    "Why did it fail? Nobody knows (yet?) and that is fine!",
    "std::vector and Class::Add are C++ names, f :: Int is Haskell",
    "release v2.3.4.5 of the client is out",
    "WebSocket closed with code 1006 after 3 reconnects",
    "GET /api/v1/guilds/{guild_id}/channels 404",
]


@pytest.mark.parametrize(("text", "secret", "expected"), PII_CORPUS)
def test_personal_data_and_credentials_are_replaced(text, secret, expected):
    scrubbed = scrub(text)

    assert secret not in scrubbed
    assert scrubbed == expected


@pytest.mark.parametrize("text", ORDINARY_PROSE)
def test_ordinary_prose_survives_unchanged(text):
    assert scrub(text) == text


def test_rules_apply_in_contract_order():
    # The bearer rule runs first, so the JWT it carries is "[redacted]", not "[jwt]"; the key=value rule
    # runs before the query-string rule, which then hides the whole query.
    assert scrub(f"Bearer {JWT}") == "Bearer [redacted]"
    assert scrub("/reset?token=abc123") == "/reset?[redacted]"


def test_empty_text_stays_empty():
    assert scrub("") == ""


_words = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10).map(str.capitalize),
    st.integers(min_value=0, max_value=99_999).map(str),
    st.tuples(*[st.integers(0, 30)] * 3).map(lambda v: ".".join(map(str, v))),
    st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)).map(
        lambda t: ":".join(f"{part:02d}" for part in t)
    ),
    st.tuples(st.integers(1, 999), st.sampled_from(["ms", "s", "m", "h"])).map(lambda d: f"{d[0]}{d[1]}"),
)
prose = st.lists(st.tuples(_words, st.sampled_from(["", ",", ".", "!", ";"])), min_size=1, max_size=15).map(
    lambda words: " ".join(word + punctuation for word, punctuation in words)
)


@given(prose)
def test_random_prose_from_a_safe_alphabet_survives(text):
    assert scrub(text) == text


@given(before=prose, email=st.emails(), after=prose)
def test_random_emails_in_prose_are_removed(before, email, after):
    assert scrub(f"{before} {email} {after}") == f"{before} [email] {after}"


ipv6_addresses = st.ip_addresses(v=6).filter(lambda ip: ip != ipaddress.IPv6Address("::"))


@given(before=prose, ip=st.one_of(st.ip_addresses(v=4), ipv6_addresses), after=prose)
def test_random_ip_addresses_in_prose_are_removed(before, ip, after):
    assert scrub(f"{before} {ip} {after}") == f"{before} [ip] {after}"


@given(before=prose, ip=ipv6_addresses)
def test_ipv6_in_exploded_form_is_removed(before, ip):
    assert scrub(f"{before} {ip.exploded}") == f"{before} [ip]"


@given(before=prose, uuid=st.uuids(), after=prose)
def test_random_uuids_in_prose_are_removed(before, uuid, after):
    assert scrub(f"{before} {uuid} {after}") == f"{before} [uuid] {after}"


@given(secret=st.binary(min_size=16, max_size=64).map(bytes.hex))
def test_long_hex_secrets_are_removed(secret):
    assert scrub(f"digest {secret} stored") == "digest [secret] stored"


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_scrubbing_is_idempotent_on_any_text(text):
    once = scrub(text)
    assert scrub(once) == once


# --- text that misleads the eye (issue 17) ----------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("invoice\u202egpj.exe", "invoicegpj.exe"),                       # right-to-left override
    ("a\u2066b\u2069c\u200ed\u200ff\u061cg\u202ah\u202bi\u202cj\u202dk", "abcdfghijk"),  # other bidi controls
    ("pay\u200bpal\u2060.com\ufeff", "paypal.com"),                   # zero-width space, word joiner, BOM
    ("\x1b[31mFAILED\x1b[0m login", "FAILED login"),                    # ANSI colour
    ("\x1b]0;pwned\x07title", "title"),                                # OSC window title
    ("bell\x07 back\x08space nul\x00 del\x7f c1\x85\x9b", "bell backspace nul del c1"),
    ("line one\nline two\tcolumn", "line one\nline two\tcolumn"),      # line feed and tab stay
    ("windows line\r\nend", "windows line\nend"),
    ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001F468\u200d\U0001F469", None),  # ZWNJ/ZWJ stay
])
def test_bidi_controls_terminal_escapes_and_control_characters_are_removed(text, expected):
    assert scrub(text) == (text if expected is None else expected)


def test_an_invisible_character_cannot_hide_a_secret_from_the_rules():
    assert scrub("pass\u200bword=hunter2hunter2") == "password=[redacted]"
    assert "alice@example.org" not in scrub("alice\u200b@example.org")
