"""The voice tables are read through `voice_alias()`, which may name a second database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connections

from telemetry.storage import insert_voice_metrics, insert_voice_sessions
from telemetry.voice import voice_alias, voice_metrics, voice_sessions
from tests.factories import ConnectionSessionFactory

PLATFORM_ALIAS = "voice_platform_test"
# The platform's own schema (contract section 9), not partitioned like our copies.
PLATFORM_SCHEMA = """
CREATE TABLE connection_sessions (id uuid PRIMARY KEY, started_at timestamptz NOT NULL,
                                  ended_at timestamptz NULL, outcome text NULL);
CREATE TABLE connection_metrics (ts timestamptz NOT NULL, session_id uuid NOT NULL, latency_ms int,
                                 packet_loss double precision, jitter_ms int, quality smallint);
"""


def _admin_connection(settings_dict, dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host=settings_dict["HOST"] or None, port=settings_dict["PORT"] or None,
                           user=settings_dict["USER"], password=settings_dict["PASSWORD"] or None,
                           dbname=dbname, autocommit=True)


@pytest.fixture(scope="module")
def platform_database(django_db_setup):
    """A second database on the same server, registered as a Django alias before the test's transaction."""
    default = connections["default"].settings_dict
    name = f"{default['NAME']}_voice_platform"
    with _admin_connection(default) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    with _admin_connection(default, name) as platform:
        platform.execute(PLATFORM_SCHEMA)
    options = {key: value for key, value in default["OPTIONS"].items() if key != "pool"}
    platform = {**default, "NAME": name, "OPTIONS": options, "TEST": {"NAME": name}}
    connections.settings[PLATFORM_ALIAS] = connections.configure_settings(
        {"default": platform, PLATFORM_ALIAS: platform})[PLATFORM_ALIAS]
    try:
        yield PLATFORM_ALIAS
    finally:
        connections[PLATFORM_ALIAS].close()
        del connections[PLATFORM_ALIAS]
        del connections.settings[PLATFORM_ALIAS]
        with _admin_connection(default) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_alias_defaults_to_our_own_copies(settings):
    del settings.VOICE_DATABASE_ALIAS

    assert voice_alias() == "default"


@pytest.mark.django_db
def test_without_a_platform_database_our_copies_are_read():
    session = ConnectionSessionFactory(outcome="crash")

    assert list(voice_sessions().values_list("outcome", flat=True)) == ["crash"]
    assert voice_sessions().get().id == session.id


@pytest.mark.django_db(databases=["default", PLATFORM_ALIAS])
def test_with_the_alias_on_a_second_database_the_rows_come_from_there(platform_database, settings):
    settings.VOICE_DATABASE_ALIAS = platform_database
    ConnectionSessionFactory(outcome="crash")  # our own copy in the default database: must not be read
    session_id = uuid.uuid4()
    started = datetime(2026, 1, 5, 10, tzinfo=UTC)

    insert_voice_sessions([{"id": session_id, "started_at": started, "outcome": "normal"}])
    insert_voice_metrics([{"ts": started, "session_id": session_id, "latency_ms": 80, "packet_loss": 1.5,
                           "jitter_ms": 20, "quality": 2}])

    assert voice_alias() == platform_database
    assert [(s.id, s.outcome) for s in voice_sessions()] == [(session_id, "normal")]
    assert list(voice_metrics().values_list("packet_loss", flat=True)) == [1.5]
