"""A throwaway database for one bench run, on the configured server, next to the configured database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.core.management import call_command
from django.db import connections


@contextmanager
def bench_database(suffix: str, alias: str, keep: bool = False) -> Iterator[str]:
    """Create (anew) and migrate `<default database>_<suffix>`, reachable as `alias` while the block runs;
    drop it afterwards unless `keep`. With alias "default" everything in the process (the read API, the
    test client's requests) uses it, with the configured pool; another alias gets no pool."""
    default = connections["default"].settings_dict
    name = f"{default['NAME']}_{suffix}"
    server = {"host": default["HOST"] or None, "port": default["PORT"] or None, "user": default["USER"],
              "password": default["PASSWORD"] or None}
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    settings_dict = {**connections.settings["default"], "NAME": name}
    if alias != "default":
        settings_dict["OPTIONS"] = {key: value for key, value in default["OPTIONS"].items() if key != "pool"}
    if alias in connections.settings:  # the next use builds its connection (and pool) from the new settings
        connections[alias].close()
        del connections[alias]
    connections.settings[alias] = settings_dict
    try:
        call_command("migrate", database=alias, verbosity=0)
        yield name
    finally:
        connections[alias].close()
        if not keep:
            with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def kept_database(suffix: str) -> Iterator[str]:
    """The database a `bench_database(suffix, "default", keep=True)` run left, as "default", migrated to this code."""
    name = f"{connections['default'].settings_dict['NAME']}_{suffix}"
    connections["default"].close()
    connections.settings["default"] = {**connections.settings["default"], "NAME": name}
    del connections["default"]
    try:
        call_command("migrate", verbosity=0)
        yield name
    finally:
        connections["default"].close()
