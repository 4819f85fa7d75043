"""The packing job writes an hour's rows of the trace filter once, after both kinds of chunks of the hour.

Since migration 0021 the log chunks' statement inserted an hour's 128 filter rows and the span chunks' statement
then updated all of them: one dead row version each until VACUUM, which does not give the space back (a bulk pack
of 3 days left the filter at twice its live size, ~3.4 bytes a span). Now:
- `telemetry_trace_hours_of(hour)` adds the trace ids of every span and log chunk of an hour in one statement; the
  packing job calls it once per hour, having set `telemetry.trace_hours_deferred` for its transaction, which the
  chunk tables' triggers read to leave the filter to it;
- any other writer of chunks (retention's rewrite of a day, a purge, a re-pack) still goes through the triggers;
- both update a row only when one of its bits changes: rewriting chunks that add no trace id leaves the rows alone.
"""

from django.db import migrations

# The trace ids of `chunks` (a relation `c` with `first_ts` and `trace_ids`) added to the rows of their hours.
ADD_IDS_SQL = r"""
    INSERT INTO telemetry_trace_hours AS stored (block, hour, bits)
    SELECT k.block, t.hour, bit_or(k.mask)
    FROM (SELECT DISTINCT date_trunc('hour', c.first_ts, 'UTC') AS hour, i.trace_id
          FROM {chunks} CROSS JOIN LATERAL unnest(c.trace_ids) AS i(trace_id)
          WHERE i.trace_id IS NOT NULL) AS t
    CROSS JOIN LATERAL telemetry_trace_hour_key(t.trace_id) AS k
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (block, hour) DO UPDATE SET bits = stored.bits | EXCLUDED.bits{only_if_changed}"""
IF_CHANGED = "\n        WHERE stored.bits <> (stored.bits | EXCLUDED.bits)"

TRIGGER_SQL = r"""
CREATE OR REPLACE FUNCTION telemetry_trace_hours_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{deferred}{add_ids};
    RETURN NULL;
END
$$;
"""
DEFERRED = r"""
    IF current_setting('telemetry.trace_hours_deferred', true) = 'on' THEN
        RETURN NULL;  -- the packing job adds the hour's ids itself (telemetry_trace_hours_of)
    END IF;"""

HOUR_CHUNKS = r"""(SELECT first_ts, trace_ids FROM telemetry_trace_chunks
                WHERE first_ts >= at_hour AND first_ts < at_hour + interval '1 hour'
                UNION ALL
                SELECT first_ts, trace_ids FROM telemetry_log_chunks
                WHERE first_ts >= at_hour AND first_ts < at_hour + interval '1 hour') AS c"""

FORWARD_SQL = (
    TRIGGER_SQL.format(deferred=DEFERRED,
                       add_ids=ADD_IDS_SQL.format(chunks="new_chunks c", only_if_changed=IF_CHANGED))
    + "CREATE FUNCTION telemetry_trace_hours_of(at_hour timestamptz) RETURNS void LANGUAGE sql AS $$"
    + ADD_IDS_SQL.format(chunks=HOUR_CHUNKS, only_if_changed=IF_CHANGED)
    + "\n$$;\n"
    + "COMMENT ON FUNCTION telemetry_trace_hours_of(timestamptz) IS\n"
    + "    'adds the trace ids of every span and log chunk of the hour starting at at_hour to the hourly filter';\n"
)
# Migration 0021's trigger function.
REVERSE_SQL = "DROP FUNCTION telemetry_trace_hours_of(timestamptz);\n" + TRIGGER_SQL.format(
    deferred="", add_ids=ADD_IDS_SQL.format(chunks="new_chunks c", only_if_changed=""))


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0023_log_chunks_without_trace_bloom")]

    operations = [migrations.RunSQL(FORWARD_SQL, REVERSE_SQL)]
