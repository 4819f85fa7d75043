"""Celery tasks of the read side: thin wrappers that beat schedules."""

from __future__ import annotations

from celery import shared_task

from command_center import probes, push
from command_center.selectors import infrastructure, overview


@shared_task(name="command_center.tasks.run_health_probes")
def run_health_probes() -> dict[str, str]:
    """Every 10 s: probe the service matrix, record transitions (health_changed), then re-cache the
    infrastructure panel so it shows the new results at once."""
    states = {service: result.status.value for service, result in probes.run_probes().items()}
    infrastructure.refresh_infrastructure()
    return states


@shared_task(name="command_center.tasks.refresh_summary")
def refresh_summary() -> str:
    """Every 5 s: recompute the cached summary so requests only read the cache."""
    overview.refresh_summary()
    return "ok"


@shared_task(name="command_center.tasks.evaluate_live_health", ignore_result=True)
def evaluate_live_health() -> None:
    """Right after spans arrived (at most once a second, see command_center.live_health): re-probe the
    services that follow the live windows, and push the vital signs they changed to watching sockets
    without waiting for the 5-second tick."""
    probes.evaluate_live_services()
    push.publish_live_panels(topics=(push.VITAL_SIGNS,))
