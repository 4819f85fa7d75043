"""A private kaiku_ops stack for fault tests and the storm bench: its own embedded PostgreSQL and Redis in
a directory of its own, migrated, with a daphne web process (and Celery processes on request), all real
processes that a test may stop, kill and restart without touching the shared servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

from kaiku_ops.embedded import EmbeddedPostgres, EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]
INGEST_TOKEN = "isolated-stack-ingest-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    data_dir: Path
    postgres: EmbeddedPostgres = field(init=False)
    redis: EmbeddedRedis = field(init=False)
    database_url: str = ""
    redis_url: str = ""
    web_port: int = 0
    # settings for every process of the stack (e.g. DATABASE_POOL_MAX), applied over the defaults
    overrides: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.postgres = EmbeddedPostgres(self.data_dir)
        self.redis = EmbeddedRedis(self.data_dir)

    @property
    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "KAIKU_", "DATABASE_",
                                                                           "REDIS_", "TEST_DATABASE"))}
        return {**keep, "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
                "KAIKU_DATA_DIR": str(self.data_dir), "KAIKU_ENV_FILE": str(self.data_dir / "absent.env"),
                "TELEMETRY_INGEST_TOKEN": INGEST_TOKEN, "DJANGO_SETTINGS_MODULE": "kaiku_ops.settings",
                "ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
                **self.overrides}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> Stack:
        self.database_url = self.postgres.start().url
        self.redis_url = self.redis.start().url
        self.manage("migrate", "--noinput")
        self.start_web()
        return self

    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"manage.py {' '.join(args)}: {result.stderr[-2000:]}"
        return result.stdout

    def python(self, code: str, timeout: float = 300) -> str:
        """Run `code` in a fresh Django process of this stack; returns its stdout."""
        result = subprocess.run([sys.executable, "-c", f"import django; django.setup()\n{code}"], cwd=ROOT,
                                env=self.env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115  (closed with the process)
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes[name] = process
        return process

    def start_web(self) -> None:
        self.web_port = self.web_port or free_port()
        self.spawn("web", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.web_port),
                           "kaiku_ops.asgi:application"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"daphne did not answer; see {self.data_dir / 'web.log'}")

    def start_worker(self, name: str = "worker", *options: str) -> subprocess.Popen:
        """A Celery worker; `options` replace the single-process pool (e.g. the Procfile's "--concurrency", "2")."""
        return self.spawn(name, [sys.executable, "-m", "celery", "-A", "kaiku_ops", "worker",
                                 *(options or ("--pool=solo", "--loglevel=WARNING")), "-n", f"{name}@%h"])

    def start_beat(self, name: str = "beat") -> subprocess.Popen:
        """Celery beat with the database scheduler, as in the Procfile."""
        return self.spawn(name, [sys.executable, "-m", "celery", "-A", "kaiku_ops", "beat", "--loglevel=INFO",
                                 "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile="])

    def kill(self, name: str, how: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, how)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # SIGTERM ignored while busy: no test waits on a graceful exit
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def stop(self) -> None:
        try:
            for name in list(self.processes):
                self.kill(name, signal.SIGTERM)
        finally:
            try:
                self.postgres.stop()
            finally:
                self.redis.stop()

    def admin_session(self, username: str = "stack-admin") -> requests.Session:
        """A logged-in superuser's HTTP session (its cookie also opens the admin socket)."""
        password = f"{username}-pw-1"
        self.python("from django.contrib.auth import get_user_model; "
                    f"get_user_model().objects.create_superuser({username!r}, password={password!r})")
        session = requests.Session()
        session.get(f"{self.base_url}/admin/login/", timeout=30)
        response = session.post(f"{self.base_url}/admin/login/", allow_redirects=False, timeout=30, data={
            "username": username, "password": password, "next": "/admin/",
            "csrfmiddlewaretoken": session.cookies["csrftoken"]})
        assert response.status_code == 302, f"login failed: {response.status_code}"
        return session

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        url = self.database_url.replace("postgres://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []


@contextmanager
def running_stack(prefix: str = "kaiku-reliability-", overrides: dict[str, str] | None = None) -> Iterator[Stack]:
    """A started stack in a new temporary directory, stopped and deleted afterwards."""
    # Not under pytest's tmp_path: every pytest session resets its root to mode 0700, which would lock
    # out the unprivileged user the embedded PostgreSQL runs as whenever another session starts.
    with tempfile.TemporaryDirectory(prefix=prefix) as data_dir:
        stack = Stack(Path(data_dir), overrides=overrides or {}).start()
        try:
            yield stack
        finally:
            stack.stop()


def post(url: str, body: bytes, token: str = INGEST_TOKEN, timeout: float = 30) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/x-protobuf", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def get(url: str, timeout: float = 30) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
