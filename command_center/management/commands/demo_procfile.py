"""Write the Procfile `make run` starts: the production Procfile plus, in demo mode, the simulator.

The simulator is never a process of the production Procfile; demo mode (KAIKU_DEMO, on by
default for `make run`) adds it beside web, worker and beat.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

SIMULATOR_LINE = ("simulator: python manage.py simulate_traffic --profile light --duration 0 "
                  "--url http://${HOST:-127.0.0.1}:${KAIKU_WEB_PORT}\n")


class Command(BaseCommand):
    help = "Write the Procfile used by `make run` (demo mode adds the traffic simulator)."

    def add_arguments(self, parser):
        parser.add_argument("--output", required=True)

    def handle(self, *args, output, **options):
        procfile = (settings.BASE_DIR / "Procfile").read_text()
        if settings.KAIKU_DEMO and _simulator_available():
            procfile += SIMULATOR_LINE
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(procfile)


def _simulator_available() -> bool:
    from django.core.management import get_commands

    return "simulate_traffic" in get_commands()
