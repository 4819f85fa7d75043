"""The 5-second publisher of vital_signs and voice_pulse.

Run by a Celery beat entry every 5 s (`expires` 5 s, so a stopped worker does not find a backlog). Each run
costs one Redis round trip per topic unless a socket watches it (command_center.presence); only then are the
selectors queried and the event fanned out. A self-rescheduling chain started by the first subscriber would
save that round trip but can die with a worker or run twice; a beat entry cannot.
"""

from celery import shared_task

from command_center import push


@shared_task(name="command_center.push_tasks.publish_live_panels", ignore_result=True)
def publish_live_panels() -> list[str]:
    return push.publish_live_panels()
