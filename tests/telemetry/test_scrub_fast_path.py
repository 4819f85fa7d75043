"""`scrub` skips a rule whose pre-check says it cannot match: the result must equal applying every rule."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.contract import _SCRUB_RULES, remove_invisible, scrub

# Fragments that trigger the rules, near misses, and the non-ASCII letters a case-insensitive regex
# folds onto ASCII ones (Kelvin sign, long s, dotless i).
FRAGMENTS = [
    "Bearer ", "BASIC ", "baſic ", "beareR\t", "eyJ", "token", "TOKEN", "api_key", "apiKey", "secret",
    "passwd", "Password", "monkey", "\u212aey", "ſecret", "paſſword", "baſıc ", "=", ": ", '"', "'", "\\\"",
    "@", "example.com", ".", ":", "::", "-", "?", "a=b", "&", "/", "+", "_", " ", "\n", "10.1.2.3",
    "fe80::1", "2001:db8::2", "123e4567-e89b-12d3-a456-426614174000", "0123456789abcdef" * 2,
    "AbCdEfGh1234567890", "x9Y8z7W6v5U4t3S2r1Q0pOnMlKjIhGfE", "abc", "XYZ", "42", "é", "日本",
]
texts = st.lists(st.sampled_from(FRAGMENTS), max_size=24).map("".join) | st.text(max_size=120)


def every_rule_applied(text: str) -> str:
    text = remove_invisible(text)  # always first: invisible characters could split a secret out of reach
    for rule in _SCRUB_RULES:
        text = rule.pattern.sub(rule.replacement, text)
    return text


@settings(max_examples=600, deadline=None)
@given(texts)
def test_the_fast_path_never_changes_the_result(text):
    assert scrub(text) == every_rule_applied(text)


def test_each_pre_check_lets_its_own_trigger_through():
    samples = [
        "Authorization: Bearer abcDEF123456",
        "Authorization: baſic abcDEF123456",
        "Basic dXNlcjpw",  # the shortest header match (14 characters): a pre-check once required 15
        "api_key=abc123 and \u212aey=zzz",
        "ſecret=hunter22",
        "id 0123456789abcdef0123456789abcdef",
        "blob x9Y8z7W6v5U4t3S2r1Q0pOnMlKjIhGfE end",
    ]
    for text in samples:
        assert scrub(text) == every_rule_applied(text) != text
