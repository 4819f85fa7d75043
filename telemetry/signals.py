"""Write-side events the read side subscribes to (telemetry never imports command_center)."""

from django.dispatch import Signal

# Sent after the ingest transaction commits, with `rows`: the ERROR log events actually inserted, each a
# dict with ts (ISO 8601), service, domain, event, message (scrubbed), trace_id and level.
error_logs_ingested = Signal()

# Sent after an export request's SERVER spans were added to the live RED windows (telemetry.live_windows),
# with `received_at` (Unix seconds): the read side re-evaluates what depends on them without waiting for
# its next beat.
live_windows_updated = Signal()
