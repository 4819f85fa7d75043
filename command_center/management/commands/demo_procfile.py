"""Write the Procfile `make run` starts: the production Procfile plus, in demo mode, the demo.

The demo (7 days of seeded history, then the live traffic simulator) is never a process of the
production Procfile; demo mode (KAIKU_DEMO, on by default for `make run`) adds it beside web,
worker and beat.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

# History is backfilled beside the running web process (seed_demo skips days it already seeded),
# so the page answers at once and fills in; then live light traffic runs until Ctrl-C.
SIMULATOR_LINE = ("demo: sh -c 'python manage.py seed_demo --days 7 --profile light && "
                  "exec python manage.py simulate_traffic --profile light --duration 0 "
                  "--url http://${HOST:-127.0.0.1}:${KAIKU_WEB_PORT}'\n")


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
