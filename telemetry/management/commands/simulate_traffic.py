"""Live Kaiku-like traffic over OTLP/HTTP: `manage.py simulate_traffic --profile light|heavy|storm`."""

import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from telemetry import storage
from telemetry.simulator.platform import Batch, Platform, live_instance_id
from telemetry.simulator.profiles import PROFILES, get_profile
from telemetry.simulator.sender import SIGNALS, OtlpSender, SenderError
from telemetry.voice import voice_alias

PROGRESS_EVERY_SECONDS = 10.0


class Command(BaseCommand):
    help = (
        "Emit live OTLP/HTTP protobuf traffic of a simulated Kaiku platform (metrics every 10 s, logs and "
        "spans every batch) and write its voice quality rows to kaiku_ops' own voice tables."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--profile", choices=sorted(PROFILES), default="light")
        parser.add_argument(
            "--duration", type=float, default=0, help="seconds to run; 0 (default) runs until Ctrl-C"
        )
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of the OTLP receiver")
        parser.add_argument("--token", default=None, help="ingest token (default: TELEMETRY_INGEST_TOKEN)")
        parser.add_argument("--batch-seconds", type=float, default=1.0, help="seconds between exports")
        parser.add_argument("--seed", type=int, default=None, help="random seed for a repeatable run")
        parser.add_argument(
            "--instance-id", default=None,
            help="service.instance.id to report (default: vc-server-1-<6 random hex digits>, one per run)",
        )
        parser.add_argument(
            "--no-voice-rows", action="store_true", help="do not write connection_sessions/connection_metrics"
        )

    def handle(self, *args, **options) -> None:
        token = options["token"] or getattr(settings, "TELEMETRY_INGEST_TOKEN", None)
        if not token:
            raise CommandError("no ingest token: pass --token or set TELEMETRY_INGEST_TOKEN")
        if options["duration"] < 0 or options["batch_seconds"] <= 0:
            raise CommandError("--duration must be >= 0 and --batch-seconds > 0")
        try:
            sender = OtlpSender(options["url"], token)
        except ValueError as error:
            raise CommandError(str(error)) from None
        profile = get_profile(options["profile"])
        # Voice rows go only to our own copies, never to a configured Kaiku platform database.
        self._write_voice_rows = not options["no_voice_rows"] and voice_alias() == "default"
        instance_id = options["instance_id"] or live_instance_id()
        platform = Platform(profile, seed=options["seed"], started_at=datetime.now(UTC), instance_id=instance_id)
        window = platform.incident_window()
        self.stdout.write(
            f"simulating '{profile.name}' as {instance_id} to {sender.base_url}"
            + (f", incident {window[0]:%H:%M:%S}-{window[1]:%H:%M:%S} UTC" if window else "")
            + (f" for {options['duration']:g} s" if options["duration"] else " until Ctrl-C")
        )
        try:
            self._run(platform, sender, options["duration"], options["batch_seconds"])
        except SenderError as error:
            raise CommandError(str(error)) from None
        except KeyboardInterrupt:
            self.stdout.write("interrupted")
        finally:
            sender.close()
        self._print_totals(sender)

    def _run(self, platform: Platform, sender: OtlpSender, duration: float, batch_seconds: float) -> None:
        started = time.monotonic()
        previous = platform.started_at
        next_progress = started + PROGRESS_EVERY_SECONDS
        next_tick = started + batch_seconds
        while not duration or time.monotonic() - started < duration:
            time.sleep(max(0.0, next_tick - time.monotonic()))
            now = datetime.now(UTC)
            batch = platform.step(now, (now - previous).total_seconds())
            previous = now
            self._deliver(batch, sender)
            if time.monotonic() >= next_progress:
                self.stdout.write(f"[{time.monotonic() - started:6.0f} s] {_summary(sender)}"
                                  + (" (incident)" if platform.incident_active(now) else ""))
                next_progress += PROGRESS_EVERY_SECONDS
            # Falling behind (a slow receiver) makes the next step longer rather than the rate lower.
            next_tick = max(next_tick + batch_seconds, time.monotonic())

    def _deliver(self, batch: Batch, sender: OtlpSender) -> None:
        sender.send("metrics", batch.metrics)
        sender.send("traces", batch.traces)
        sender.send("logs", batch.logs)
        if self._write_voice_rows and (batch.voice_sessions or batch.voice_metrics):
            try:
                storage.insert_voice_sessions(batch.voice_sessions)
                storage.insert_voice_metrics(batch.voice_metrics)
            except DatabaseError as error:
                self._write_voice_rows = False
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                self.stderr.write(f"voice rows disabled, the database refused them: {reason}")

    def _print_totals(self, sender: OtlpSender) -> None:
        self.stdout.write(f"totals: {_summary(sender)}")
        for signal in SIGNALS:
            if sender.stats[signal].last_error:
                self.stdout.write(f"  last {signal} problem: {sender.stats[signal].last_error}")


def _summary(sender: OtlpSender) -> str:
    names = {"metrics": "points", "logs": "logs", "traces": "spans"}
    parts = []
    for signal in SIGNALS:
        stats = sender.stats[signal]
        parts.append(
            f"{names[signal]} {stats.accepted}/{stats.sent} accepted, {stats.rejected} rejected,"
            f" {stats.retried} retries"
        )
    return "; ".join(parts)
