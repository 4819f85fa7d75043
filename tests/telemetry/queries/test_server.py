"""Catalog look-ups of the PostgreSQL server the project runs on."""

from telemetry.queries.server import unavailable_extensions


def test_contrib_extensions_are_available_and_an_unknown_one_is_named(db):
    assert unavailable_extensions(["pg_trgm", "btree_gin"]) == []
    assert unavailable_extensions(["pg_trgm", "kaiku_no_such_extension"]) == ["kaiku_no_such_extension"]
