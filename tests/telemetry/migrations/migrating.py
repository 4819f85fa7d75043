"""Steps the upgrade tests share: migrate the test database to a node of the graph and look at its catalogue."""

from __future__ import annotations

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(target: tuple[str, str]) -> None:
    MigrationExecutor(connection).migrate([target])


def previous(migration: tuple[str, str]) -> tuple[str, str]:
    """The one migration `migration` depends on."""
    (before,) = MigrationExecutor(connection).loader.graph.node_map[migration].parents
    return before.key


def columns(relation: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
                       " AND NOT attisdropped", [relation])
        return {row[0] for row in cursor.fetchall()}
