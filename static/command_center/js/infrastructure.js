// Tier 4: backing services — PostgreSQL, Valkey/Redis, S3, OTel pipeline, our own receiver and jobs.

import { $, el, replaceChildren } from "./dom.js";
import { formatDateTime, formatNumber, formatTime, formatValue } from "./format.js";
import { TimeChart } from "./charts.js";
import { rangeParams } from "./url_state.js";
import { TrendSource, column } from "./trends.js";
import { applyBarWidths, barList, dataTable, definitionList } from "./widgets.js";
import { badge, serviceBadge, signalBadge } from "./status.js";

function box(title, extraClass = "", id = null) {
  const host = el("div");
  return { host, node: el("section", { class: `cc-box ${extraClass}`, id, tabindex: id ? "-1" : null },
    el("h3", { text: title }), host) };
}

function jobRun(run) {
  if (!run) return "never ran";
  const outcome = run.ok ? "ok" : "FAILED";
  return `${formatDateTime(run.started_at)} UTC · ${outcome} · ${formatValue(run.duration_ms, "ms")}`;
}

const RECEIVER_COLUMNS = [
  ["requests", "Requests", formatNumber],
  ["accepted", "Accepted", formatNumber],
  ["rejected", "Rejected", formatNumber],
  ["not_kept", "Not kept", formatNumber],
  ["stored", "Stored", formatNumber],
  ["bytes", "Received", (value) => formatValue(value, "bytes")],
  ["decode_ms_avg", "Decode avg", (value) => formatValue(value, "ms")],
  ["last_at", "Last request (UTC)", (value) => (value ? formatTime(value) : "never")],
];

// receiver_stats(): per-signal counters since `since`, summed over every web process.
function receiverSection(stats) {
  if (!stats) return el("p", { class: "cc-empty", text: "The OTLP receiver has not reported yet." });
  const signals = Object.entries(stats.signals ?? {});
  return el("div", {},
    definitionList([
      ["Receiver", badge(stats.available ? "green" : "red", stats.available ? "accepting" : "unavailable")],
      ["Counting since", stats.since ? `${formatDateTime(stats.since)} UTC` : "—"],
      ["Buffered, not yet stored", formatNumber(stats.buffer_depth ?? null)],
    ]),
    el("div", { class: "cc-table-scroll" }, dataTable(
      ["Signal", ...RECEIVER_COLUMNS.map(([, label]) => ({ label, numeric: true }))],
      signals.map(([signal, counters]) => el("tr", {}, el("th", { scope: "row", text: signal }),
        RECEIVER_COLUMNS.map(([key, , format]) => el("td", { class: "cc-num", text: format(counters?.[key] ?? null) })))),
      "No OTLP request received yet.")));
}

export class Infrastructure {
  constructor(panel, { api, freshness, config, pageConfig, getState, openLogsWindow }) {
    this.api = api;
    this.freshness = freshness;
    this.getState = getState;
    this.M = pageConfig.metrics;
    this.trends = new TrendSource(api);
    this.cadence = config.refresh_seconds?.infrastructure ?? 10;
    const onPick = (ts, step) => openLogsWindow(ts - step, ts + step);
    this.boxes = {
      postgresql: box("PostgreSQL", "cc-wide", "cc-infra-postgresql"),
      redis: box("Valkey (Redis)", "", "cc-infra-redis"),
      s3: box("S3 storage", "", "cc-infra-s3"),
      otel: box("OTel pipeline", "cc-wide", "cc-infra-otel"),
      receiver: box("OTLP receiver (this server)", "cc-wide"),
      retention: box("Retention and rollups"),
    };
    this.dbChart = new TimeChart(el("div"), { title: "DB query latency", series: [{ label: "p95", unit: "ms" }],
      unit: "ms", height: 160, onPick });
    this.otelChart = new TimeChart(el("div"), { title: "OTel export failures", series: [{ label: "failures" }],
      unit: "/s", height: 160, onPick });
    // Click-throughs focus the pool and the slow queries: built once, so a refresh never takes the focus away.
    this.postgres = {
      head: el("div"),
      pool: el("div", { id: "cc-infra-pool", class: "cc-focus-target", tabindex: "-1" }),
      slow: el("div", { id: "cc-infra-slow-queries", class: "cc-focus-target", tabindex: "-1" }),
    };
    replaceChildren(this.boxes.postgresql.host, this.postgres.head,
      el("div", { class: "cc-infra-columns" }, this.postgres.pool,
        el("div", {}, el("h4", { text: "Query latency p95" }), this.dbChart.container)),
      this.postgres.slow);
    replaceChildren($("[data-panel-slot=infrastructure]", panel),
      el("div", { class: "cc-infra-grid" }, Object.values(this.boxes).map((entry) => entry.node)));
  }

  async refresh() {
    const state = this.getState();
    this.trends.begin(rangeParams(state));
    const [infra, dbTrend, otelTrend] = await Promise.all([
      this.api.get("infrastructure"),
      this.trends.get(this.M.DB_QUERY_DURATION_SECONDS),
      this.trends.get(this.M.OTEL_EXPORT_FAILURES_TOTAL),
    ]);
    this.paintPostgres(infra.postgresql ?? {});
    this.paintRedis(infra.redis ?? {});
    this.paintS3(infra.s3 ?? {});
    this.paintOtel(infra.otel_pipeline ?? {});
    replaceChildren(this.boxes.receiver.host, receiverSection(infra.ingest?.receiver));
    const retention = infra.retention ?? {};
    replaceChildren(this.boxes.retention.host, definitionList([
      ["Retention", `${retention.retention_days ?? 30} days`],
      ["Last purge", jobRun(retention.last_purge)],
      ["Last rollup refresh", jobRun(retention.last_rollup_refresh)],
    ]));
    this.dbChart.setData(dbTrend.timestamps ?? [], [column(dbTrend, "p95")]);
    this.otelChart.setData(otelTrend.timestamps ?? [], [column(otelTrend, "rate")]);
    this.freshness.mark("infrastructure", this.cadence, infra.stale);
  }

  header(service) {
    return el("p", { class: "cc-service-head" }, serviceBadge(service.status),
      el("span", { class: "cc-quiet", text: service.detail ?? "" }));
  }

  paintPostgres(db) {
    const pool = db.pool ?? {};
    const slow = (db.slow_queries ?? []).map((row) => el("tr", {}, el("td", { class: "cc-route", text: row.span_name ?? "" }),
      el("td", { class: "cc-num", text: formatNumber(row.count) }),
      el("td", { class: "cc-num", text: formatValue(row.p95_ms, "ms") }),
      el("td", { class: "cc-num", text: formatValue(row.max_ms, "ms") })));
    replaceChildren(this.postgres.head, this.header(db));
    replaceChildren(this.postgres.pool,
      el("h4", {}, "Connection pool ", signalBadge(pool.status ?? null,
        pool.utilization_pct === null || pool.utilization_pct === undefined
          ? "not reported" : `${formatNumber(pool.utilization_pct)} % used`)),
      barList([
        { label: "active", value: pool.active, tone: pool.status ?? null },
        { label: "idle", value: pool.idle },
        { label: "max", value: pool.max },
      ], { emptyText: "The pool gauges have not been reported yet." }),
      definitionList([
        ["Query p95", el("span", {}, formatValue(db.query_p95_ms ?? null, "ms"), " ", signalBadge(db.query_p95_status ?? null))],
        ["Query rate", formatValue(db.query_rate_per_s ?? null, "/s")],
      ]));
    replaceChildren(this.postgres.slow, el("h4", { text: "Top slow queries (24 h)" }),
      dataTable(["Span", { label: "Count", numeric: true }, { label: "p95", numeric: true }, { label: "Max", numeric: true }],
        slow, "No database spans in the trace index for the last 24 h."));
    applyBarWidths(this.boxes.postgresql.host);
    this.dbChart.resize();
  }

  paintRedis(redis) {
    replaceChildren(this.boxes.redis.host, this.header(redis),
      definitionList([["Used for", (redis.used_for ?? []).join(", ") || "—"]]));
  }

  paintS3(s3) {
    replaceChildren(this.boxes.s3.host, this.header(s3),
      definitionList([["Bucket", s3.bucket ?? "not configured"]]));
  }

  paintOtel(otel) {
    const dropped = otel.dropped_spans_5m;
    replaceChildren(this.boxes.otel.host, this.header(otel),
      el("div", { class: "cc-infra-columns" },
        definitionList([
          ["Export failure rate", el("span", {}, formatValue(otel.export_failure_rate_pct ?? null, "%"), " ",
            signalBadge(otel.export_failure_status ?? null))],
          ["Dropped spans (5 min)", el("span", {}, formatNumber(dropped ?? null), " ",
            dropped > 0 ? signalBadge(otel.dropped_spans_status ?? "yellow", "spans are being dropped")
              : signalBadge(otel.dropped_spans_status ?? null))],
          ["Export queue", formatValue(otel.queue_pct ?? null, "%")],
          ["Collector endpoint", otel.collector_endpoint ?? "not configured (COMMAND_CENTER_OTEL_COLLECTOR_ENDPOINT)"],
        ]),
        el("div", {}, el("h4", { text: "Export failures" }), this.otelChart.container)));
    this.otelChart.resize();
  }
}
