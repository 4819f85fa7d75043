"""`make run` on a fresh data directory: web, worker and beat come up and serve within 90 s."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_make_run_serves_login_and_readyz_with_all_processes(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PYTEST_CURRENT_TEST")}
    env.update({"KAIKU_DATA_DIR": str(tmp_path / "data"), "PORT": str(port), "KAIKU_DEMO": "0"})
    with open(tmp_path / "make-run.log", "w+") as log:
        process = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            ready = login = None
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    ready = fetch(f"http://127.0.0.1:{port}/readyz")
                    login = fetch(f"http://127.0.0.1:{port}/admin/login/")
                    if ready[0] == 200 and login[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(1)
            log.seek(0)
            output = log.read()
            assert ready and ready[0] == 200, output[-3000:]
            assert login and login[0] == 200 and b'name="username"' in login[1]
            assert "Created system admin 'admin' with password:" in output
            credentials = tmp_path / "data" / "admin-credentials"
            assert credentials.stat().st_mode & 0o777 == 0o600
            # honcho names every process it started; beat and worker must be up, not just web
            time.sleep(3)
            log.seek(0)
            output = log.read()
            for name in ("web.1", "worker.1", "beat.1"):
                assert f"{name} started" in output, output[-3000:]
            assert "celery@" in output and "ready" in output, output[-3000:]
            assert "beat: Starting" in output, output[-3000:]
            assert process.poll() is None, output[-3000:]
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
            subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "kaiku_ops.embedded", "stop"], cwd=ROOT,
                           env={**env}, capture_output=True, timeout=60)
