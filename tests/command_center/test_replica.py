"""With a `replica` database configured, selectors read from it while audit writes stay on the primary."""

from __future__ import annotations

import copy
import uuid
import warnings
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from command_center.models import AuditEvent
from kaiku_ops.db_routers import read_alias
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401

pytestmark = pytest.mark.django_db

def _server_connection(config: dict, dbname: str) -> psycopg.Connection:
    return psycopg.connect(
        dbname=dbname,
        user=config["USER"],
        password=config["PASSWORD"] or None,
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        autocommit=True,
    )


@pytest.fixture
def replica(settings):
    """A second, real database standing in for the replica, holding telemetry's tables only (migrated like the
    primary's, so it has whatever storage layout the read API expects; no audit table)."""
    primary = connections["default"].settings_dict
    name = f"{primary['NAME']}_replica"
    with _server_connection(primary, "postgres") as server:
        server.execute(f'DROP DATABASE IF EXISTS "{name}"')
        server.execute(f'CREATE DATABASE "{name}"')
    config = copy.deepcopy(primary)
    config["NAME"] = name
    config["OPTIONS"].pop("pool", None)
    config["CONN_MAX_AGE"] = None
    with warnings.catch_warnings():  # "Overriding setting DATABASES": exactly what this test means to do
        warnings.simplefilter("ignore")
        settings.DATABASES = {**settings.DATABASES, "replica": config}
    connections.settings["replica"] = config
    # The test case only lets aliases known when it started open connections; open this one directly.
    connections["replica"].connect()
    routers = settings.DATABASE_ROUTERS
    settings.DATABASE_ROUTERS = []  # the project's router never migrates a replica: a real one is replicated
    call_command("migrate", "telemetry", database="replica", verbosity=0)
    settings.DATABASE_ROUTERS = routers
    yield name
    connections["replica"].close()
    del connections["replica"]
    del connections.settings["replica"]
    with _server_connection(primary, "postgres") as server:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_reads_go_to_the_replica_and_audit_writes_to_the_primary(client, system_admin, replica):
    assert read_alias() == "replica"
    with _server_connection(connections["default"].settings_dict, replica) as database:
        database.execute(
            "INSERT INTO telemetry_log_events (ts, id, level, service, domain, event, message)"
            " VALUES (%s, %s, 'ERROR', 'vc-server', 'db', 'only.on.replica', 'replicated row')",
            [timezone.now() - timedelta(minutes=1), uuid.uuid4()],
        )
    client.force_login(system_admin)

    body = client.get(reverse("observability:logs")).json()

    assert [item["event"] for item in body["items"]] == ["only.on.replica"]
    assert AuditEvent.objects.using("default").filter(endpoint="logs").count() == 1
    with connections["replica"].cursor() as cursor:  # the replica has no audit table at all
        cursor.execute("SELECT to_regclass('command_center_auditevent')")
        assert cursor.fetchone() == (None,)
