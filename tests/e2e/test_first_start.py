"""First start (issue 13): a fresh `make run` in demo mode shows values on all four vital cards within 90 s of
printing the Command Center URL.

The real `make run` on a fresh data directory and a free port (embedded PostgreSQL and Redis under the temporary
directory, never `.data/` or port 8000), then a logged-in admin polls the summary once a second. The measured
times are printed (`-s`) and kept as properties of the test (`--junitxml`); docs/benchmarks.md has the figure.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.test_make_run import ROOT, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GOAL_SECONDS = 90
URL_TIMEOUT_SECONDS = 300  # venv, embedded servers, migrations: not part of the goal
CARDS = ("latency_p95", "traffic_rate", "error_rate", "saturation_pct")


def wait_for(log: Path, pattern: str, timeout: float, process: subprocess.Popen) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if re.search(pattern, log.read_text(errors="replace")):
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not in the output of make run:\n{log.read_text(errors='replace')[-4000:]}")


def admin_session(base_url: str, data_dir: Path) -> requests.Session:
    credentials = dict(line.split("=", 1) for line in (data_dir / "admin-credentials").read_text().splitlines())
    session = requests.Session()
    session.get(f"{base_url}/admin/login/", timeout=10)
    response = session.post(f"{base_url}/admin/login/", allow_redirects=False, timeout=10, data={
        "username": credentials["username"], "password": credentials["password"], "next": "/admin/",
        "csrfmiddlewaretoken": session.cookies["csrftoken"]})
    assert response.status_code == 302, f"login failed: {response.status_code}"
    return session


def test_a_fresh_make_run_shows_all_four_cards_within_90_s_of_printing_the_url(tmp_path, record_property):
    port = free_port()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PYTEST_CURRENT_TEST")}
    env.update({"KAIKU_DATA_DIR": str(data_dir), "PORT": str(port), "KAIKU_DEMO": "1"})
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "make-run.log"
    started = time.monotonic()
    with open(log, "w") as output:
        process = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        url_printed = wait_for(log, r"Command Center: http://", URL_TIMEOUT_SECONDS, process)
        deadline = url_printed + GOAL_SECONDS + 30  # a little past the goal, to report how far past it was
        serving = session = None
        cards: dict = {}
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if session is None:
                    if requests.get(f"{base_url}/readyz", timeout=2).status_code != 200:
                        raise requests.ConnectionError
                    serving = serving or time.monotonic()
                    session = admin_session(base_url, data_dir)
                body = session.get(f"{base_url}/api/admin/observability/summary", timeout=10).json()
                cards = body["vital_signs"]
                if all(cards[name]["value"] is not None for name in CARDS):
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        shown = time.monotonic()
        text = log.read_text(errors="replace")
        values = {name: cards.get(name, {}).get("value") for name in CARDS}
        figures = {"url_printed_s": round(url_printed - started, 1),
                   "serving_after_url_s": round(serving - url_printed, 1) if serving else None,
                   "cards_after_url_s": round(shown - url_printed, 1)}
        for name, value in figures.items():
            record_property(name, value)
        print(f"\nfirst start: {figures}; cards {values}; sources "
              f"{ {name: cards.get(name, {}).get('source') for name in CARDS} }")
        assert all(value is not None for value in values.values()), (values, text[-4000:])
        assert shown - url_printed <= GOAL_SECONDS, (figures, text[-4000:])
        # the seed ran beside the simulator: the last hour first, up to the minute the demo started
        assert re.search(r"demo\.1 .*every 60 s: .* \(recent\)", text), text[-4000:]
        assert "simulating 'light'" in text, text[-4000:]
        assert process.poll() is None, text[-4000:]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "kaiku_ops.embedded", "stop"], cwd=ROOT,
                       env={**env}, capture_output=True, timeout=60)
