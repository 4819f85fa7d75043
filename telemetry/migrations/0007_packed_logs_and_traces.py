"""Packed logs and spans: a closed day's rows, grouped per hour into compressed arrays.

A stored log record costs ~350 bytes as a row (tuple header, uuid key, three indexes) and a kept span
~220; the same record inside an array that PostgreSQL compresses costs ~50 and ~43 (docs/benchmarks.md).
telemetry.packing moves a day partition's rows into `telemetry_log_chunks` / `telemetry_trace_chunks`
once the day is over: one chunk per hour and per (level, service, domain) for logs, per (service, domain)
for spans. Each array holds one column of the chunk's rows, all in (ts, id) order.

Readers use the views `telemetry_log_events_all` and `telemetry_trace_index_all`: the hot rows, then the
packed ones unnested, with the columns and types of the hot tables. The `chunk_*` columns let a query
skip whole chunks before unnesting them (for a hot row they are its own ts, and a NULL filter):
  chunk_first_ts < end AND chunk_last_ts >= start    -- the chunks of a time window
  telemetry_bloom_may_hold(chunk_trace_bloom, <uuid>)    -- the chunks that may hold a trace
The trace filter is a Bloom filter of the chunk's trace ids (~18 bits an id, 3 probes, under 0.5 % false
positives), filled by a trigger on insert: a chunk's trace-id array costs 16 bytes an id and does not
compress, the filter an eighth of that.
Ids are packed in binary (uuid, bigint); the CHECKs added to the hot tables guarantee they convert.
"""

import importlib

from django.db import migrations, models

# The daily partitions as migration 0004 creates them (frozen there), partitioned by `first_ts`.
V0004 = importlib.import_module("telemetry.migrations.0004_metric_minutes")
CHUNK_TABLES = ["telemetry_log_chunks", "telemetry_trace_chunks"]

PACKED_SCHEMA_SQL = r"""
ALTER TABLE telemetry_log_events
    ADD CONSTRAINT telemetry_log_events_trace_id_hex CHECK (trace_id ~ '^[0-9a-f]{32}$'),
    ADD CONSTRAINT telemetry_log_events_span_id_hex CHECK (span_id ~ '^[0-9a-f]{16}$');
ALTER TABLE telemetry_trace_index
    ADD CONSTRAINT telemetry_trace_index_trace_id_hex CHECK (trace_id ~ '^[0-9a-f]{32}$');

-- A Bloom filter of trace ids: a power of two of at least 64 bytes, ~18 bits an id, 3 probes from md5.
CREATE FUNCTION telemetry_trace_bloom(trace_ids uuid[]) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH size AS (
        SELECT greatest(64, 2 ^ ceil(log(2, greatest(cardinality(trace_ids), 1) * 18.0 / 8)))::int AS bytes
    ), probes AS (
        SELECT DISTINCT ('x' || substr(md5(id::text), p, 8))::bit(32)::bigint % (size.bytes * 8) AS bit
        FROM size, unnest(trace_ids) AS ids(id), unnest(ARRAY[1, 9, 17]) AS probe(p)
        WHERE id IS NOT NULL
    ), set_bytes AS (
        SELECT bit / 8 AS n, bit_or(1 << (bit % 8)::int) AS value FROM probes GROUP BY 1
    )
    SELECT decode(string_agg(lpad(to_hex(coalesce(set_bytes.value, 0)), 2, '0'), '' ORDER BY g.n), 'hex')
    FROM size CROSS JOIN generate_series(0, size.bytes - 1) AS g(n) LEFT JOIN set_bytes ON set_bytes.n = g.n
$$;

-- Whether a chunk with filter `bloom` may hold `trace_id` (true when there is no filter: a hot row).
CREATE FUNCTION telemetry_bloom_may_hold(bloom bytea, trace_id uuid) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT bloom IS NULL OR bool_and(
        get_bit(bloom, (('x' || substr(md5(trace_id::text), p, 8))::bit(32)::bigint % (length(bloom) * 8))::int) = 1)
    FROM unnest(ARRAY[1, 9, 17]) AS probe(p)
$$;

CREATE FUNCTION telemetry_chunk_trace_bloom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.trace_bloom := telemetry_trace_bloom(NEW.trace_ids);
    RETURN NEW;
END
$$;

CREATE TABLE telemetry_log_chunks (
    first_ts  timestamptz   NOT NULL,
    last_ts   timestamptz   NOT NULL,
    level     text          NOT NULL,
    service   text          NOT NULL,
    domain    text          NOT NULL,
    row_count integer       NOT NULL,
    trace_ids uuid[]        NOT NULL,
    ts        timestamptz[] NOT NULL,
    id        uuid[]        NOT NULL,
    event     text[]        NOT NULL,
    message   text[]        NOT NULL,
    span_ids  bigint[]      NOT NULL,
    attrs     jsonb[]       NOT NULL,
    trace_bloom bytea       NULL
) PARTITION BY RANGE (first_ts);
CREATE INDEX telemetry_log_chunks_first_ts ON telemetry_log_chunks (first_ts);
COMMENT ON TABLE telemetry_log_chunks IS
    'packed telemetry_log_events rows: one chunk per hour and (level, service, domain); see telemetry.packing';

CREATE TABLE telemetry_trace_chunks (
    first_ts     timestamptz   NOT NULL,
    last_ts      timestamptz   NOT NULL,
    service      text          NOT NULL,
    domain       text          NOT NULL,
    row_count    integer       NOT NULL,
    trace_ids    uuid[]        NOT NULL,
    ts           timestamptz[] NOT NULL,
    id           uuid[]        NOT NULL,
    duration_ms  integer[]     NOT NULL,
    span_name    text[]        NOT NULL,
    route        text[]        NOT NULL,
    status_code  text[]        NOT NULL,
    kept_reason  "char"[]      NOT NULL,
    trace_bloom  bytea         NULL
) PARTITION BY RANGE (first_ts);
CREATE INDEX telemetry_trace_chunks_first_ts ON telemetry_trace_chunks (first_ts);
COMMENT ON TABLE telemetry_trace_chunks IS
    'packed telemetry_trace_index rows: one chunk per hour and (service, domain); see telemetry.packing';

CREATE TRIGGER telemetry_log_chunks_trace_bloom BEFORE INSERT ON telemetry_log_chunks
    FOR EACH ROW EXECUTE FUNCTION telemetry_chunk_trace_bloom();
CREATE TRIGGER telemetry_trace_chunks_trace_bloom BEFORE INSERT ON telemetry_trace_chunks
    FOR EACH ROW EXECUTE FUNCTION telemetry_chunk_trace_bloom();

CREATE TABLE telemetry_log_chunks_default PARTITION OF telemetry_log_chunks DEFAULT;
CREATE TABLE telemetry_trace_chunks_default PARTITION OF telemetry_trace_chunks DEFAULT;

CREATE VIEW telemetry_log_events_all AS
SELECT e.ts, e.id, e.level, e.service, e.domain, e.event, e.message, e.trace_id, e.span_id, e.attrs,
       e.ts AS chunk_first_ts, e.ts AS chunk_last_ts, NULL::bytea AS chunk_trace_bloom
FROM telemetry_log_events e
UNION ALL
SELECT u.ts, u.id, c.level, c.service, c.domain, u.event, u.message,
       replace(u.trace_id::text, '-', ''), lpad(to_hex(u.span_id), 16, '0'), u.attrs,
       c.first_ts, c.last_ts, c.trace_bloom
FROM telemetry_log_chunks c
CROSS JOIN LATERAL unnest(c.ts, c.id, c.event, c.message, c.trace_ids, c.span_ids, c.attrs)
    AS u(ts, id, event, message, trace_id, span_id, attrs);
COMMENT ON VIEW telemetry_log_events_all IS 'every stored log record: hot rows and packed chunks unnested';

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
"""

UNDO_PACKED_SCHEMA_SQL = """
DROP VIEW telemetry_trace_index_all;
DROP VIEW telemetry_log_events_all;
DROP TABLE telemetry_trace_chunks;
DROP TABLE telemetry_log_chunks;
DROP FUNCTION telemetry_chunk_trace_bloom();
DROP FUNCTION telemetry_bloom_may_hold(bytea, uuid);
DROP FUNCTION telemetry_trace_bloom(uuid[]);
ALTER TABLE telemetry_trace_index DROP CONSTRAINT telemetry_trace_index_trace_id_hex;
ALTER TABLE telemetry_log_events DROP CONSTRAINT telemetry_log_events_span_id_hex,
                                 DROP CONSTRAINT telemetry_log_events_trace_id_hex;
"""


def create_partitions(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for table in CHUNK_TABLES:
            V0004.create_day_partitions(cursor, table)


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0006_service_instances")]

    operations = [
        migrations.RunSQL(PACKED_SCHEMA_SQL, UNDO_PACKED_SCHEMA_SQL),
        migrations.RunPython(create_partitions, migrations.RunPython.noop),
        # The views above, as Django's unmanaged models StoredLogEvent and StoredTraceEntry.
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name="StoredLogEvent",
                fields=[
                    ("pk", models.CompositePrimaryKey("id", "ts", blank=True, editable=False, primary_key=True,
                                                      serialize=False)),
                    ("id", models.UUIDField()),
                    ("ts", models.DateTimeField()),
                    ("level", models.TextField()),
                    ("service", models.TextField()),
                    ("domain", models.TextField()),
                    ("event", models.TextField()),
                    ("message", models.TextField()),
                    ("trace_id", models.TextField(null=True)),
                    ("span_id", models.TextField(null=True)),
                    ("attrs", models.JSONField(default=dict)),
                    ("chunk_first_ts", models.DateTimeField()),
                    ("chunk_last_ts", models.DateTimeField()),
                    ("chunk_trace_bloom", models.BinaryField(null=True)),
                ],
                options={"db_table": "telemetry_log_events_all", "managed": False},
            ),
            migrations.CreateModel(
                name="StoredTraceEntry",
                fields=[
                    ("pk", models.CompositePrimaryKey("id", "ts", blank=True, editable=False, primary_key=True,
                                                      serialize=False)),
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
                    ("chunk_trace_bloom", models.BinaryField(null=True)),
                ],
                options={"db_table": "telemetry_trace_index_all", "managed": False},
            ),
        ]),
    ]
