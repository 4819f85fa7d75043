"""Browser tests of the Command Center: Debian's Chromium driven by Playwright against a real daphne.

pytest-django's `live_server` speaks WSGI only, so the page's WebSocket needs a real ASGI server: one daphne
process per session, pointed at the test database and the same Redis. Tests write their data with
`transactional_db` (committed, so daphne sees it) and reach the server only over HTTP/WebSocket.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import expect

from tests.command_center.api_fixtures import delete_command_center_cache_keys
from tests.conftest import truncate_telemetry_tables

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
INSTALL_HINT = "install Debian's Chromium: `apt-get install -y chromium` (Playwright's download is not used)"
SERVER_START_TIMEOUT_S = 30.0
# The summary shows "Collecting data…" for the first minute of a web process (design section 15);
# the test server shortens that minute so the suite does not spend it waiting.
COLLECTING_SECONDS = 8.0
RESULTS_DIR = Path(settings.BASE_DIR) / "test-results"


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return str(CHROMIUM)
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing and CI=true: browser tests must run in CI; {INSTALL_HINT}")
    pytest.skip(f"{CHROMIUM} not found: {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_url(settings_dict: dict) -> str:
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    # A Unix socket directory travels percent-encoded in the host part.
    host = quote(settings_dict.get("HOST") or "127.0.0.1", safe="")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgresql://{credentials}{host}{port}/{quote(settings_dict['NAME'], safe='')}"


@dataclass
class AsgiServer:
    url: str
    started_at: float
    process: subprocess.Popen = field(repr=False)

    def wait_until_warm(self) -> None:
        """Let the first minute pass, after which the summary reports real values."""
        remaining = COLLECTING_SECONDS + 1 - (time.monotonic() - self.started_at)
        if remaining > 0:
            time.sleep(remaining)


@pytest.fixture(scope="module")
def asgi_server(django_db_setup, chromium_executable) -> Iterator[AsgiServer]:
    yield from serve_asgi()


def serve_asgi(**extra_env: str) -> Iterator[AsgiServer]:
    """One daphne process on a free port over the test database; `extra_env` adds settings (a module that
    needs, say, external links configured overrides `asgi_server` with `yield from serve_asgi(...)`)."""
    port = _free_port()
    env = {
        **{name: value for name, value in os.environ.items() if name != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DATABASE_URL": _database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "TELEMETRY_INGEST_TOKEN": settings.TELEMETRY_INGEST_TOKEN,
        "KAIKU_DATA_DIR": str(settings.DATA_DIR),
        "COMMAND_CENTER_COLLECTING_SECONDS": str(COLLECTING_SECONDS),
        "DATABASE_POOL": "false",  # the test database is truncated between tests; keep no idle sessions
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "kaiku_ops.settings",
        **extra_env,
    }
    log_path = RESULTS_DIR / "daphne.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "kaiku_ops.asgi:application"],
            cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    server = AsgiServer(url=f"http://127.0.0.1:{port}", started_at=time.monotonic(), process=process)
    try:
        _wait_for_http(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for_http(server: AsgiServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"daphne exited with {server.process.returncode}; see test-results/daphne.log")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"daphne did not answer within {SERVER_START_TIMEOUT_S:.0f} s; "
                       "see test-results/daphne.log")


@pytest.fixture
def empty_telemetry_tables(transactional_db) -> None:
    """transactional_db empties Django-managed tables only: the telemetry tables go too."""
    truncate_telemetry_tables()
    # The API caches answers for up to 10 s; one cached by the previous test describes rows just truncated
    # (a page loaded with no metrics would otherwise draw "No data" charts over the next test's seeded ones).
    delete_command_center_cache_keys()


@pytest.fixture(scope="module")
def browser(chromium_executable):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread while it lives (module scope, so that
    # async tests of other modules get a thread without one). Django refuses ORM calls from a thread with a
    # running loop; the test code itself is plain synchronous code, so the guard does not apply.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class PageWatch:
    """What a page did that a test may want to assert about: dialogs opened, script errors, API calls."""

    def __init__(self, page) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.api_calls: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", lambda request: self.api_calls.append(request.url)
                if "/api/admin/observability/" in request.url else None)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def page(browser, asgi_server):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=asgi_server.url,
                                  accept_downloads=True)
    # Generous waits: CI machines run these next to the rest of the suite. The 5 s triage promise is
    # asserted with its own explicit deadline.
    context.set_default_timeout(20_000)
    expect.set_options(timeout=10_000)
    browser_page = context.new_page()
    browser_page.watch = PageWatch(browser_page)
    yield browser_page
    context.close()


@pytest.fixture
def results_dir() -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return RESULTS_DIR
