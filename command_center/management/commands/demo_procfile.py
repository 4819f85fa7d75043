"""Write the Procfile `make run` starts: the production Procfile plus, in demo mode, the demo.

The demo (seeded history beside live traffic) is never a process of the production Procfile; demo mode
(KAIKU_DEMO, on by default for `make run`) adds it beside web, worker and beat.

The demo line decides the boundary between history and live traffic once, the current minute, and then
runs two things at once: `seed_demo --until <boundary>` in the background (the last hour first, flushed at
once, then the older days; it ends there, so no minute is seeded and live) and, as soon as the web process
accepts connections, the live simulator (`exec`, so it is the process honcho watches: a seed that finishes
does not end the demo, and honcho's SIGTERM to the process group stops both).
"""

import os
import socket
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

SIMULATOR_LINE = (
    "demo: sh -c 'boundary=$(date -u +%Y-%m-%dT%H:%M:00Z); "
    "python manage.py seed_demo --days 7 --profile light --until $boundary & "
    "python manage.py demo_procfile --wait-for-web 300 && "
    "exec python manage.py simulate_traffic --profile light --duration 0 "
    "--url http://${HOST:-127.0.0.1}:${KAIKU_WEB_PORT}'\n"
)


class Command(BaseCommand):
    help = ("Write the Procfile used by `make run` (demo mode adds the seed and the traffic simulator); with "
            "--wait-for-web, wait until the web process accepts connections instead.")

    def add_arguments(self, parser):
        parser.add_argument("--output")
        parser.add_argument("--wait-for-web", type=float, metavar="SECONDS",
                            help="wait up to SECONDS for HOST:KAIKU_WEB_PORT to accept connections, then exit")

    def handle(self, *args, output=None, wait_for_web=None, **options):
        if wait_for_web is not None:
            _wait_for_web(wait_for_web)
            return
        if not output:
            raise CommandError("--output is required")
        procfile = (settings.BASE_DIR / "Procfile").read_text()
        if settings.KAIKU_DEMO and _simulator_available():
            procfile += SIMULATOR_LINE
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(procfile)


def _wait_for_web(seconds: float) -> None:
    """The simulator gives up on a refused connection, and it now starts while daphne is still loading."""
    address = (os.environ.get("HOST") or "127.0.0.1", int(os.environ.get("KAIKU_WEB_PORT") or 8000))
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(address, timeout=1).close()
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise CommandError(f"the web process did not accept connections on {address[0]}:{address[1]} "
                                   f"within {seconds:g} s") from None
            time.sleep(0.2)


def _simulator_available() -> bool:
    from django.core.management import get_commands

    return "simulate_traffic" in get_commands()
