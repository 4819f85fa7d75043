"""Text as PostgreSQL can store it."""

from collections.abc import Mapping


def storable(text: str) -> str:
    """PostgreSQL text and jsonb cannot hold NUL characters; a sender's stray NUL must not fail a batch."""
    return text.replace("\x00", "") if "\x00" in text else text


def storable_values(values: Mapping[str, str]) -> dict[str, str]:
    return {key: storable(value) for key, value in values.items()}
