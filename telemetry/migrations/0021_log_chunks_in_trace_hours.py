"""The hour filter of migration 0017 holds the trace ids of log chunks too, so the logs of one trace are found as its
spans are: the hours whose filter may hold the trace, then the chunks of those hours whose trace ids do.

Before, a log look-up checked the Bloom filter of every log chunk in its window (~2,600 chunks over 30 days at
`heavy`, ~90 ms); now it reads one row per hour and the chunks of one or two hours. Log and span chunks share one
filter: one look-up finds the candidate hours of both, and the filter's false positives grow only with the trace ids
logs add that kept spans do not have.

The trigger function now skips NULL trace ids (log records without a trace). Upgrade: existing log chunks' trace ids
are added one day at a time. Reverse: the log trigger goes; the bits it set stay, which can only make a span
look-up check an hour's chunks for nothing.
"""

from django.db import migrations

FUNCTION_SQL = r"""
CREATE OR REPLACE FUNCTION telemetry_trace_hours_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO telemetry_trace_hours AS stored (block, hour, bits)
    SELECT k.block, t.hour, bit_or(k.mask)
    FROM (SELECT DISTINCT date_trunc('hour', n.first_ts, 'UTC') AS hour, i.trace_id
          FROM new_chunks n CROSS JOIN LATERAL unnest(n.trace_ids) AS i(trace_id)
          WHERE i.trace_id IS NOT NULL) AS t
    CROSS JOIN LATERAL telemetry_trace_hour_key(t.trace_id) AS k
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (block, hour) DO UPDATE SET bits = stored.bits | EXCLUDED.bits;
    RETURN NULL;
END
$$;
CREATE TRIGGER telemetry_log_chunks_hours AFTER INSERT ON telemetry_log_chunks
    REFERENCING NEW TABLE AS new_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_trace_hours_add();
"""

REVERSE_SQL = "DROP TRIGGER telemetry_log_chunks_hours ON telemetry_log_chunks"

# One day of existing log chunks at a time (%s: the day's start and end).
ADD_DAY_SQL = r"""
INSERT INTO telemetry_trace_hours AS stored (block, hour, bits)
SELECT k.block, t.hour, bit_or(k.mask)
FROM (SELECT DISTINCT date_trunc('hour', c.first_ts, 'UTC') AS hour, i.trace_id
      FROM telemetry_log_chunks c CROSS JOIN LATERAL unnest(c.trace_ids) AS i(trace_id)
      WHERE c.first_ts >= %s AND c.first_ts < %s AND i.trace_id IS NOT NULL) AS t
CROSS JOIN LATERAL telemetry_trace_hour_key(t.trace_id) AS k
GROUP BY 1, 2
ORDER BY 1, 2
ON CONFLICT (block, hour) DO UPDATE SET bits = stored.bits | EXCLUDED.bits
"""


def add_existing_log_chunks(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT date_trunc('day', min(first_ts), 'UTC'), max(first_ts) FROM telemetry_log_chunks")
        day, last = cursor.fetchone()
        while day is not None and day <= last:
            cursor.execute("SELECT %s::timestamptz + interval '1 day'", [day])
            next_day = cursor.fetchone()[0]
            cursor.execute(ADD_DAY_SQL, [day, next_day])
            day = next_day


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0020_error_group_hour_counts_in_key")]

    operations = [
        migrations.RunSQL(FUNCTION_SQL, REVERSE_SQL),
        migrations.RunPython(add_existing_log_chunks, migrations.RunPython.noop),
    ]
