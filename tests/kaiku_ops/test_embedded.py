"""The embedded servers are real PostgreSQL and Redis daemons, started idempotently; a data directory from the
PostgreSQL 16 of the old embedded package (`pgserver`) is refused in one line and moved by `upgrade`."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from kaiku_ops.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServiceError

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def embedded_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m kaiku_ops.embedded ...` as `make services` / `make stop` run it, on a private data directory."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"KAIKU_DATA_DIR": str(data_dir), "REDIS_URL": "redis://127.0.0.1:1/0"})  # PostgreSQL only
    return subprocess.run([sys.executable, "-m", "kaiku_ops.embedded", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_embedded_postgres_starts_answers_and_restarts_idempotently_with_the_contrib_extensions(tmp_path):
    server = EmbeddedPostgres(tmp_path)
    try:
        first = server.start()
        with psycopg.connect(first.url) as conn:
            assert conn.execute("SELECT 40 + 2").fetchone() == (42,)
        again = server.start()
        assert again == first  # reused, not a second server
        assert server.stop() is True
        assert server.running_pid() is None
        restarted = server.start()
        assert restarted.port == first.port and restarted.pid != first.pid
        with psycopg.connect(restarted.url, autocommit=True) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("kaiku_ops",)
            assert conn.execute("SHOW server_version").fetchone()[0].split(".")[0] == server.major_version() == "18"
            conn.execute("CREATE EXTENSION pg_trgm")  # what migration 0011 creates
            conn.execute("CREATE EXTENSION btree_gin")
            assert conn.execute("SELECT 'pool exhausted' % 'pool exhaust'").fetchone() == (True,)
    finally:
        server.stop()


def test_the_server_outlives_the_process_that_started_it_and_make_stop_stops_it(tmp_path):
    started = embedded_cli(tmp_path, "start")
    assert started.returncode == 0, started.stderr
    url = started.stdout.split("embedded PostgreSQL: ", 1)[1].split()[0]
    with psycopg.connect(url) as conn:  # another process, after the starting one exited
        assert conn.execute("SELECT current_database()").fetchone() == ("kaiku_ops",)
    stopped = embedded_cli(tmp_path, "stop")
    assert "embedded PostgreSQL: stopped" in stopped.stdout
    assert EmbeddedPostgres(tmp_path).running_pid() is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)


def test_embedded_redis_starts_answers_and_restarts_idempotently(tmp_path):
    server = EmbeddedRedis(tmp_path)
    try:
        first = server.start()
        client = redis.Redis.from_url(first.url)
        client.set("kaiku:probe", "1")
        assert server.start() == first
        assert server.stop() is True
        restarted = server.start()
        assert restarted.port == first.port
        assert redis.Redis.from_url(restarted.url).get("kaiku:probe") == b"1"  # append-only file kept it
    finally:
        server.stop()


@pytest.fixture
def pgserver_16_data(tmp_path):
    """A data directory made by the old embedded package (PostgreSQL 16.2) holding one row, its server still
    running as that package's system user: the state `.data/` is in on a machine that ran `make run` before."""
    pgserver = pytest.importorskip("pgserver")
    pgdata = EmbeddedPostgres(tmp_path).pgdata
    pgdata.parent.mkdir(parents=True)
    tmp_path.chmod(0o755)  # as root, the wrapper runs initdb as its own user, who must reach the directory
    old = pgserver.get_server(pgdata, cleanup_mode=None)
    atexit.unregister(old._cleanup)  # left running on purpose; at exit it would only log to closed streams
    old.psql("CREATE DATABASE kaiku_ops;")
    with psycopg.connect(old.get_uri("kaiku_ops"), autocommit=True) as conn:
        assert conn.execute("SHOW server_version").fetchone()[0].startswith("16.")
        conn.execute("CREATE TABLE kept (id integer PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO kept VALUES (1, 'from PostgreSQL 16')")
    yield tmp_path
    EmbeddedPostgres(tmp_path).stop()


def test_a_postgresql_16_data_directory_is_refused_in_one_line_and_make_stop_still_stops_it(pgserver_16_data):
    server = EmbeddedPostgres(pgserver_16_data)
    with pytest.raises(EmbeddedServiceError) as refused:
        server.start()
    line = str(refused.value)
    assert "\n" not in line
    assert "holds a PostgreSQL 16 database, which PostgreSQL 18 cannot open" in line
    assert "python -m kaiku_ops.embedded upgrade" in line and "make clean" in line

    cli = embedded_cli(pgserver_16_data, "start")  # what `make run` / `make test` print before stopping
    assert cli.returncode == 1
    assert cli.stderr.strip() == f"kaiku_ops: {line}"

    old_pid = server.running_pid()
    assert old_pid
    stopped = embedded_cli(pgserver_16_data, "stop")  # `make clean` runs it first
    assert "embedded PostgreSQL: stopped" in stopped.stdout, stopped.stderr
    assert server.running_pid() is None
    assert embedded_cli(pgserver_16_data, "start").returncode == 1  # still refused, not started
    assert server.running_pid() is None and server.data_version() == "16"


def test_upgrade_moves_the_postgresql_16_database_into_18_and_keeps_the_old_directory(pgserver_16_data):
    upgraded = embedded_cli(pgserver_16_data, "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    server = EmbeddedPostgres(pgserver_16_data)
    assert server.data_version() == "18"
    with psycopg.connect(server.start().url) as conn:
        assert conn.execute("SELECT id, body FROM kept").fetchall() == [(1, "from PostgreSQL 16")]
        assert conn.execute("SHOW server_version").fetchone()[0].startswith("18.")
    old = [path for path in server.root.iterdir() if path.name.startswith("data-pg16-")]
    assert len(old) == 1 and (old[0] / "PG_VERSION").read_text().strip() == "16"
    assert str(old[0]) in upgraded.stdout
    again = embedded_cli(pgserver_16_data, "upgrade")
    assert again.returncode == 1 and "holds PostgreSQL 18 already" in again.stderr
