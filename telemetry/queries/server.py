"""What the PostgreSQL server itself offers: catalog look-ups, no telemetry table."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connections


def unavailable_extensions(names: Iterable[str], using: str = "default") -> list[str]:
    """The extensions among `names` this server cannot create (not installed with it, e.g. no contrib)."""
    wanted = list(names)
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT name FROM pg_available_extensions WHERE name = ANY(%s)", [wanted])
        available = {name for (name,) in cursor.fetchall()}
    return [name for name in wanted if name not in available]
