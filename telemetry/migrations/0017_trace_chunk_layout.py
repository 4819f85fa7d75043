"""Trace chunks without a per-row uuid, and an hourly filter that finds one trace over 30 days (issue 15, item 3).

**Row ids.** A span's row id was `uuid5(trace id, span id)`: 16 random bytes a span that no compression shrinks,
and a third of a packed span. It is now computed from what is stored: the last 12 bytes of the trace id followed
by the last 4 bytes of the span id (`telemetry_span_row_id(trace uuid, span_id integer)`, the Python twin is
telemetry.storage.span_row_id). A chunk keeps `span_ids` (those 4 bytes, as an int4) instead of `id`; a row id that
does not derive so (a row written with another id) is kept whole in `ids`, which stays NULL for a chunk whose ids
all derive. Four bytes of span id are enough to tell the spans of one trace apart: the key stays (ts, id).

**The hour filter.** `telemetry_trace_hours` holds one blocked Bloom filter of the trace ids of the chunks of each
UTC hour: 128 blocks of 4096 bits, one row per (block, hour); all 7 probes of a trace id fall into one block
(md5 of the id's text: block = its first 7 bits, probes = the next seven 12-bit slices). A look-up reads one block
per hour, one index range for a 30-day window (720 small rows), and opens only the chunks of the hours whose block
holds the probes, checking each one's trace ids (`trace_ids @> ARRAY[id]`). A statement trigger on the chunk table
ORs the ids of every INSERT into it (late chunks of a packed hour, repacks), rows in key order so concurrent
packers lock in one order. The chunks' own Bloom filter (`trace_bloom`, ~2.6 bytes a span) goes: the hour filter
costs less and answers for 720 hours in one read.

**Views.** `telemetry_trace_index_all` derives `id`, and gains `chunk_packed` (false for a hot row: a constant per
branch, so a condition like `NOT chunk_packed OR chunk_first_ts = ANY(...)` folds to one side in each) and
`chunk_trace_uuid` (the trace id as a uuid, cheaper to compare than the text). `telemetry_trace_index_lookup` is
the same rows read for a trace look-up: it unnests a chunk's trace ids only and subscripts the other arrays at the
matching positions, so finding 2 spans in a 23,000-span chunk does not unnest every column of it.

Upgrade of an existing database: hot rows get their derived id (the last 4 bytes of the old id stand in for the
span id: a span re-sent across the upgrade is stored twice); every chunk is rewritten, one day at a time, with
`span_ids` from its old ids, which makes their rows' ids the derived ones too; the hour filter is filled by the
trigger as they are. The SQL is frozen as this migration runs it.
"""

from django.db import migrations, models

FUNCTIONS_SQL = r"""
-- The row id of a span: the last 12 bytes of its trace id, then the last 4 bytes of its span id.
CREATE FUNCTION telemetry_span_row_id(trace_id uuid, span_id integer) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (right(replace(trace_id::text, '-', ''), 24) || lpad(to_hex(span_id), 8, '0'))::uuid
$$;
-- The span-id part of a row id (its last 4 bytes, as a signed int4).
CREATE FUNCTION telemetry_span_id_bits(id uuid) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ('x' || right(id::text, 8))::bit(32)::integer
$$;

CREATE TABLE telemetry_trace_hours (
    block smallint    NOT NULL,
    hour  timestamptz NOT NULL,
    bits  bit(4096)   NOT NULL,
    PRIMARY KEY (block, hour)
);
COMMENT ON TABLE telemetry_trace_hours IS
    'blocked Bloom filter of the trace ids of each hour''s trace chunks; see telemetry.queries.stored';

-- A trace id's block and its 7 probes as a mask (md5 of the id's text: 7 bits of block, then 7 x 12 bits).
CREATE FUNCTION telemetry_trace_hour_key(trace_id uuid, OUT block smallint, OUT mask bit(4096))
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT substring(h FROM 1 FOR 7)::integer::smallint,
           set_bit(set_bit(set_bit(set_bit(set_bit(set_bit(set_bit(repeat('0', 4096)::bit(4096),
               substring(h FROM 8 FOR 12)::integer, 1), substring(h FROM 20 FOR 12)::integer, 1),
               substring(h FROM 32 FOR 12)::integer, 1), substring(h FROM 44 FOR 12)::integer, 1),
               substring(h FROM 56 FOR 12)::integer, 1), substring(h FROM 68 FOR 12)::integer, 1),
               substring(h FROM 80 FOR 12)::integer, 1)
    FROM (SELECT ('x' || md5(trace_id::text))::bit(128) AS h) AS hashed
$$;

CREATE FUNCTION telemetry_trace_hours_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO telemetry_trace_hours AS stored (block, hour, bits)
    SELECT k.block, t.hour, bit_or(k.mask)
    FROM (SELECT DISTINCT date_trunc('hour', n.first_ts, 'UTC') AS hour, i.trace_id
          FROM new_chunks n CROSS JOIN LATERAL unnest(n.trace_ids) AS i(trace_id)) AS t
    CROSS JOIN LATERAL telemetry_trace_hour_key(t.trace_id) AS k
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (block, hour) DO UPDATE SET bits = stored.bits | EXCLUDED.bits;
    RETURN NULL;
END
$$;
"""

LAYOUT_SQL = r"""
DROP VIEW telemetry_trace_index_all;
DROP TRIGGER telemetry_trace_chunks_trace_bloom ON telemetry_trace_chunks;
CREATE TEMPORARY TABLE telemetry_trace_chunks_0016 ON COMMIT DROP AS SELECT * FROM telemetry_trace_chunks;
TRUNCATE telemetry_trace_chunks;
ALTER TABLE telemetry_trace_chunks DROP COLUMN id, DROP COLUMN trace_bloom,
    ADD COLUMN span_ids integer[] NOT NULL, ADD COLUMN ids uuid[] NULL;
COMMENT ON COLUMN telemetry_trace_chunks.span_ids IS
    'the last 4 bytes of each span id: with the trace id, the row id (telemetry_span_row_id)';
COMMENT ON COLUMN telemetry_trace_chunks.ids IS
    'NULL, or every row id of the chunk when one of them does not derive from its trace and span id';
CREATE TRIGGER telemetry_trace_chunks_hours AFTER INSERT ON telemetry_trace_chunks
    REFERENCING NEW TABLE AS new_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_trace_hours_add();

UPDATE telemetry_trace_index SET id = telemetry_span_row_id(trace_id::uuid, telemetry_span_id_bits(id))
WHERE id <> telemetry_span_row_id(trace_id::uuid, telemetry_span_id_bits(id));
ALTER TABLE telemetry_trace_index ALTER COLUMN id DROP DEFAULT;
"""

# Back to migration 0016's layout: ids whole again (hot rows keep their derived ids), Bloom filters rebuilt.
REVERSE_LAYOUT_SQL = r"""
DROP TRIGGER telemetry_trace_chunks_hours ON telemetry_trace_chunks;
CREATE TEMPORARY TABLE telemetry_trace_chunks_0017 ON COMMIT DROP AS SELECT * FROM telemetry_trace_chunks;
TRUNCATE telemetry_trace_chunks;
ALTER TABLE telemetry_trace_chunks DROP COLUMN span_ids, DROP COLUMN ids,
    ADD COLUMN id uuid[] NOT NULL, ADD COLUMN trace_bloom bytea NULL;
CREATE TRIGGER telemetry_trace_chunks_trace_bloom BEFORE INSERT ON telemetry_trace_chunks
    FOR EACH ROW EXECUTE FUNCTION telemetry_chunk_trace_bloom();
INSERT INTO telemetry_trace_chunks (first_ts, last_ts, service, domain, row_count, trace_ids, ts, id, duration_ms,
                                    span_name, route, status_code, kept_reason)
SELECT first_ts, last_ts, service, domain, row_count, trace_ids, ts,
       coalesce(ids, ARRAY(SELECT telemetry_span_row_id(t, s) FROM unnest(trace_ids, span_ids) WITH ORDINALITY
                           AS derived(t, s, n) ORDER BY n)),
       duration_ms, span_name, route, status_code, kept_reason
FROM telemetry_trace_chunks_0017;
DROP TABLE telemetry_trace_chunks_0017;
ALTER TABLE telemetry_trace_index ALTER COLUMN id SET DEFAULT gen_random_uuid();
DROP FUNCTION telemetry_trace_hours_add();
DROP FUNCTION telemetry_trace_hour_key(uuid);
DROP TABLE telemetry_trace_hours;
DROP FUNCTION telemetry_span_id_bits(uuid);

CREATE VIEW telemetry_trace_index_all AS
SELECT t.ts, t.id, t.duration_ms, t.trace_id, t.span_name, t.domain, t.route, t.status_code, t.service,
       t.kept_reason, t.ts AS chunk_first_ts, t.ts AS chunk_last_ts, NULL::bytea AS chunk_trace_bloom
FROM telemetry_trace_index t
UNION ALL
SELECT u.ts, u.id, u.duration_ms, replace(u.trace_id::text, '-', ''), u.span_name, c.domain, u.route,
       u.status_code, c.service, u.kept_reason, c.first_ts, c.last_ts, c.trace_bloom
FROM telemetry_trace_chunks c
CROSS JOIN LATERAL unnest(c.ts, c.id, c.duration_ms, c.trace_ids, c.span_name, c.route, c.status_code,
                          c.kept_reason)
    AS u(ts, id, duration_ms, trace_id, span_name, route, status_code, kept_reason);
COMMENT ON VIEW telemetry_trace_index_all IS 'every stored span: hot rows and packed chunks unnested';
DROP FUNCTION telemetry_span_row_id(uuid, integer);
"""

# One day of old chunks at a time (%s: the day's start and end), so the trigger's transition table stays small.
CONVERT_DAY_SQL = r"""
INSERT INTO telemetry_trace_chunks (first_ts, last_ts, service, domain, row_count, trace_ids, ts, span_ids, ids,
                                    duration_ms, span_name, route, status_code, kept_reason)
SELECT first_ts, last_ts, service, domain, row_count, trace_ids, ts,
       ARRAY(SELECT telemetry_span_id_bits(i) FROM unnest(id) WITH ORDINALITY AS old(i, n) ORDER BY n), NULL,
       duration_ms, span_name, route, status_code, kept_reason
FROM telemetry_trace_chunks_0016 WHERE first_ts >= %s AND first_ts < %s
"""

VIEWS_SQL = r"""
CREATE VIEW telemetry_trace_index_all AS
SELECT t.ts, t.id, t.duration_ms, t.trace_id, t.span_name, t.domain, t.route, t.status_code, t.service,
       t.kept_reason, t.ts AS chunk_first_ts, t.ts AS chunk_last_ts, false AS chunk_packed,
       t.trace_id::uuid AS chunk_trace_uuid
FROM telemetry_trace_index t
UNION ALL
SELECT u.ts, coalesce(u.id, telemetry_span_row_id(u.trace_id, u.span_id)), u.duration_ms,
       replace(u.trace_id::text, '-', ''), u.span_name, c.domain, u.route, u.status_code, c.service, u.kept_reason,
       c.first_ts, c.last_ts, true, u.trace_id
FROM telemetry_trace_chunks c
CROSS JOIN LATERAL unnest(c.ts, c.ids, c.span_ids, c.duration_ms, c.trace_ids, c.span_name, c.route,
                          c.status_code, c.kept_reason)
    AS u(ts, id, span_id, duration_ms, trace_id, span_name, route, status_code, kept_reason);
COMMENT ON VIEW telemetry_trace_index_all IS 'every stored span: hot rows and packed chunks unnested';

CREATE VIEW telemetry_trace_index_lookup AS
SELECT t.ts, t.id, t.duration_ms, t.trace_id, t.span_name, t.domain, t.route, t.status_code, t.service,
       t.kept_reason, t.ts AS chunk_first_ts, t.ts AS chunk_last_ts, false AS chunk_packed,
       t.trace_id::uuid AS chunk_trace_uuid
FROM telemetry_trace_index t
UNION ALL
SELECT c.ts[p.n], coalesce(c.ids[p.n], telemetry_span_row_id(p.trace_id, c.span_ids[p.n])), c.duration_ms[p.n],
       replace(p.trace_id::text, '-', ''), c.span_name[p.n], c.domain, c.route[p.n], c.status_code[p.n], c.service,
       c.kept_reason[p.n], c.first_ts, c.last_ts, true, p.trace_id
FROM telemetry_trace_chunks c
CROSS JOIN LATERAL unnest(c.trace_ids) WITH ORDINALITY AS p(trace_id, n);
COMMENT ON VIEW telemetry_trace_index_lookup IS
    'telemetry_trace_index_all read position by position: for conditions on chunk_trace_uuid (one trace)';
"""


def convert_chunks(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT date_trunc('day', min(first_ts), 'UTC'), max(first_ts) FROM telemetry_trace_chunks_0016")
        day, last = cursor.fetchone()
        while day is not None and day <= last:
            cursor.execute("SELECT %s::timestamptz + interval '1 day'", [day])
            next_day = cursor.fetchone()[0]
            cursor.execute(CONVERT_DAY_SQL, [day, next_day])
            day = next_day
        cursor.execute("DROP TABLE telemetry_trace_chunks_0016")


SPAN_FIELDS = [
    ("pk", models.CompositePrimaryKey("id", "ts", blank=True, editable=False, primary_key=True, serialize=False)),
    ("id", models.UUIDField()),
    ("ts", models.DateTimeField()),
    ("trace_id", models.TextField()),
    ("span_name", models.TextField()),
    ("domain", models.TextField()),
    ("route", models.TextField(null=True)),
    ("status_code", models.TextField(null=True)),
    ("duration_ms", models.IntegerField()),
    ("service", models.TextField()),
    ("kept_reason", models.CharField(max_length=1, null=True)),
    ("chunk_first_ts", models.DateTimeField()),
    ("chunk_last_ts", models.DateTimeField()),
    ("chunk_packed", models.BooleanField()),
    ("chunk_trace_uuid", models.UUIDField()),
]


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0016_log_chunk_layout")]

    operations = [
        migrations.RunSQL(FUNCTIONS_SQL + LAYOUT_SQL, REVERSE_LAYOUT_SQL),
        migrations.RunPython(convert_chunks, migrations.RunPython.noop),
        migrations.RunSQL(VIEWS_SQL, "DROP VIEW telemetry_trace_index_lookup; DROP VIEW telemetry_trace_index_all;"),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RemoveField(model_name="storedtraceentry", name="chunk_trace_bloom"),
            migrations.AddField(model_name="storedtraceentry", name="chunk_packed",
                                field=models.BooleanField(default=False), preserve_default=False),
            migrations.AddField(model_name="storedtraceentry", name="chunk_trace_uuid",
                                field=models.UUIDField(default=None), preserve_default=False),
            migrations.CreateModel(
                name="StoredTraceLookup",
                fields=SPAN_FIELDS,
                options={"db_table": "telemetry_trace_index_lookup", "managed": False},
            ),
        ]),
    ]
