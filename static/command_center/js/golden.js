// Tier 2: Golden Signals (latency, traffic, errors, saturation) with the incident view on top.

import { $, el, replaceChildren } from "./dom.js";
import { formatNumber, formatShortDateTime, formatValue, isNumber, parseTime, truncate } from "./format.js";
import { TimeChart } from "./charts.js";
import { rangeParams } from "./url_state.js";
import { TrendSource, bucketed, column, compareColumn, compareSpec, labelled, percentOf } from "./trends.js";
import { dataTable, gauge } from "./widgets.js";
import { statusFor } from "./status.js";


// Each chart: a title, its series, and how to pull columns out of trend responses.
// With a comparison on (trends.compare), a chart of one metric also gets its main line a day or a week earlier
// (`overlay`: a column aligned on the same timestamps and its series spec), drawn dashed on the same axes.
function overlay(trends, label, values, unit = undefined) {
  if (!trends.compare || !values) return {};
  return { compareColumns: [values], compareSeries: [compareSpec(label, trends.compare, unit)] };
}

function chartSpecs(M, L, flags) {
  const percentiles = (metric, keys) => async (trends) => {
    const body = await trends.get(metric);
    const main = keys.includes("p95") ? "p95" : keys[keys.length - 1];
    return { timestamps: body.timestamps, columns: keys.map((key) => column(body, key)), unit: body.unit,
      ...overlay(trends, main, compareColumn(body, main)) };
  };
  const single = (metric, key, label) => async (trends) => {
    const body = await trends.get(metric);
    return { timestamps: body.timestamps, columns: [column(body, key)], unit: body.unit,
      ...overlay(trends, label, compareColumn(body, key)) };
  };
  const outcome = (metric, value) => async (trends) => {
    const body = await trends.get(metric, L.OUTCOME);
    return { timestamps: body.timestamps, columns: [labelled(body, L.OUTCOME, value, "rate")], unit: "/s" };
  };
  const pSeries = (keys) => keys.map((key) => ({ label: key }));
  return {
    latency: [
      { title: "API request latency", series: pSeries(["p50", "p95", "p99"]),
        load: percentiles(M.HTTP_REQUEST_DURATION_SECONDS, ["p50", "p95", "p99"]) },
      { title: "DB query latency", series: pSeries(["p50", "p95"]),
        load: percentiles(M.DB_QUERY_DURATION_SECONDS, ["p50", "p95"]) },
      { title: "Voice session duration", series: pSeries(["p50", "p95", "p99"]),
        load: percentiles(M.VOICE_SESSION_DURATION_SECONDS, ["p50", "p95", "p99"]) },
      flags.client_telemetry && { title: "Client WebRTC connect time", series: pSeries(["p95"]),
        load: percentiles(M.CLIENT_VOICE_WEBRTC_CONNECT_DURATION_SECONDS, ["p95"]) },
    ],
    traffic: [
      { title: "API request rate", series: [{ label: "requests", fill: true }], unit: "req/s",
        load: single(M.HTTP_REQUESTS_TOTAL, "rate", "requests") },
      { title: "Active WebSocket connections", series: [{ label: "connections" }],
        load: single(M.WS_CONNECTIONS_ACTIVE, "value", "connections") },
      { title: "Active voice sessions", series: [{ label: "sessions" }],
        load: single(M.VOICE_SESSIONS_ACTIVE, "value", "sessions") },
      { title: "WebSocket messages by event type", stacked: true, unit: "msg/s", dynamicSeries: true,
        load: async (trends) => {
          const body = await trends.get(M.WS_MESSAGES_TOTAL, L.WS_EVENT_TYPE);
          const series = body.series ?? [];
          return { timestamps: body.timestamps, unit: "msg/s",
            series: series.map((entry) => ({ label: entry.labels?.[L.WS_EVENT_TYPE] ?? "other" })),
            columns: series.map((entry) => entry.values?.rate ?? []) };
        } },
      { title: "Voice RTP packets forwarded", series: [{ label: "packets", fill: true }], unit: "pkt/s",
        load: single(M.VOICE_RTP_PACKETS_FORWARDED_TOTAL, "rate", "packets") },
    ],
    errors: [
      { title: "HTTP errors (4xx vs 5xx)", stacked: true, series: [{ label: "4xx" }, { label: "5xx" }], unit: "err/s",
        load: async (trends) => {
          const body = await trends.get(M.HTTP_ERRORS_TOTAL, L.HTTP_STATUS_CODE);
          return { timestamps: body.timestamps, unit: "err/s",
            columns: bucketed(body, L.HTTP_STATUS_CODE, "rate", ["4xx", "5xx"], (code) => `${code.charAt(0)}xx`) };
        } },
      { title: "Auth login failures", series: [{ label: "failures" }],
        load: outcome(M.AUTH_LOGIN_ATTEMPTS_TOTAL, "failure") },
      { title: "Auth token refresh failures", series: [{ label: "failures" }],
        load: outcome(M.AUTH_TOKEN_REFRESH_TOTAL, "failure") },
      { title: "WebSocket reconnects", series: [{ label: "reconnects" }],
        load: single(M.WS_RECONNECTS_TOTAL, "rate", "reconnects") },
      { title: "Voice join failures", series: [{ label: "failed joins" }],
        load: outcome(M.VOICE_JOINS_TOTAL, "error") },
      { title: "OTel export failures", series: [{ label: "failures" }],
        load: single(M.OTEL_EXPORT_FAILURES_TOTAL, "rate", "failures") },
      flags.client_telemetry && { title: "Client WebRTC failures", series: [{ label: "failures" }],
        load: single(M.CLIENT_VOICE_WEBRTC_FAILURES_TOTAL, "rate", "failures") },
    ],
    saturation: [
      { title: "DB pool utilization", series: [{ label: "active / max", fill: true }], unit: "%",
        load: async (trends) => {
          const [active, max] = await Promise.all([trends.get(M.DB_POOL_CONNECTIONS_ACTIVE),
            trends.get(M.DB_POOL_CONNECTIONS_MAX)]);
          const [earlierActive, earlierMax] = [compareColumn(active, "value"), compareColumn(max, "value")];
          return { timestamps: active.timestamps, unit: "%",
            columns: [percentOf(column(active, "value"), column(max, "value"))],
            ...overlay(trends, "active / max", earlierActive && earlierMax && percentOf(earlierActive, earlierMax)) };
        } },
      { title: "DB idle connections", series: [{ label: "idle" }],
        load: single(M.DB_POOL_CONNECTIONS_IDLE, "value", "idle") },
      { title: "OTel dropped spans", series: [{ label: "dropped" }],
        load: single(M.OTEL_DROPPED_SPANS_TOTAL, "rate", "dropped") },
      { title: "Process memory (RSS)", series: [{ label: "RSS", fill: true }], unit: "bytes",
        load: single(M.PROCESS_MEMORY_BYTES, "value", "RSS") },
    ],
  };
}

const SIGNAL_TITLES = { latency: "Latency", traffic: "Traffic", errors: "Errors", saturation: "Saturation" };
const INCIDENT_SERIES = {
  latency: { label: "API p95", unit: "ms" },
  traffic: { label: "requests", unit: "req/s" },
  errors: { label: "errors", unit: "err/s" },
  saturation: { label: "DB pool", unit: "%" },
};

export class GoldenSignals {
  constructor(panel, { api, freshness, config, pageConfig, getState, setSignal, setCompare, openLogsWindow, deployTimes,
    navigation }) {
    this.panel = panel;
    this.navigation = navigation;
    this.listLinks = [];
    this.api = api;
    this.freshness = freshness;
    this.config = config;
    this.getState = getState;
    this.deployTimes = deployTimes;
    this.M = pageConfig.metrics;
    this.L = pageConfig.labels;
    this.trends = new TrendSource(api);
    this.cadence = config.refresh_seconds?.trends ?? 30;
    const onPick = (ts, step) => openLogsWindow(ts - step, ts + step);
    this.signalSelect = $("#cc-incident-signal");
    this.signalSelect.addEventListener("change", () => setSignal(this.signalSelect.value));
    this.compareSelect = $("#cc-compare");
    this.compareSelect.addEventListener("change", () => setCompare(this.compareSelect.value));
    this.incident = new TimeChart($("[data-chart-slot=incident]", panel), {
      title: "Incident view", series: [INCIDENT_SERIES.latency, { label: "error rate", right: true, unit: "%" }],
      rightUnit: "%", height: 260, onPick,
    });
    this.charts = [];
    this.tables = {};
    const slot = $("[data-panel-slot=golden]", panel);
    const specs = chartSpecs(this.M, this.L, config.feature_flags ?? {});
    for (const [signal, charts] of Object.entries(specs)) {
      const grid = el("div", { class: "cc-chart-grid" });
      const section = el("section", { class: "cc-box cc-signal", id: `cc-signal-${signal}`, tabindex: "-1",
        "aria-labelledby": `cc-signal-${signal}-title` },
      el("h3", { id: `cc-signal-${signal}-title`, text: SIGNAL_TITLES[signal] }));
      if (signal === "saturation") {
        this.poolGauge = el("div", { class: "cc-gauge-row" });
        section.append(this.poolGauge);
      }
      section.append(grid);
      for (const spec of charts.filter(Boolean)) {
        const host = el("div");
        grid.append(el("figure", { class: "cc-chart-card" }, el("figcaption", { text: spec.title }), host));
        const chart = new TimeChart(host, { title: spec.title, series: spec.series ?? [{ label: "" }],
          unit: spec.unit ?? "", stacked: spec.stacked, onPick });
        this.charts.push({ spec, chart });
      }
      if (signal === "latency") {
        section.append(el("div", { class: "cc-two-tables" }, this.tableHost("slow", "Top slow routes (p95)"),
          this.tableHost("slowTraces", "Slow traces in this range", this.listLink("traces", { status: "slow" }, "All slow traces"))));
      }
      if (signal === "errors") {
        section.append(el("div", { class: "cc-two-tables" }, this.tableHost("failing", "Top failing routes"),
          this.tableHost("categories", "Top error categories")),
        this.tableHost("errorLogs", "Latest ERROR logs in this range", this.listLink("logs", { level: "ERROR" }, "All ERROR logs")));
      }
      slot.append(section);
    }
  }

  tableHost(name, title, link = null) {
    this.tables[name] = el("div", { class: "cc-table-host" });
    return el("div", { class: "cc-table-block", dataset: { table: name } },
      el("div", { class: "cc-table-head" }, el("h4", { text: title }), link), this.tables[name]);
  }

  // A link to the Logs or Traces tab with these filters and the page's range.
  listLink(list, filters, text) {
    const link = el("a", { class: "cc-more-link", href: this.navigation.hrefForList(list, filters),
      onclick: (event) => {
        if (event.ctrlKey || event.metaKey || event.shiftKey) return;
        event.preventDefault();
        this.navigation.openList(list, filters);
      } }, `${text} →`);
    this.listLinks.push({ link, list, filters });
    return link;
  }

  async refresh() {
    const state = this.getState();
    const range = rangeParams(state);
    this.signalSelect.value = state.signal;
    this.compareSelect.value = state.compare ?? "";
    this.trends.begin(range, state.compare);
    const results = await Promise.allSettled([
      this.refreshIncident(state.signal, range),
      ...this.charts.map(({ spec, chart }) => this.refreshChart(spec, chart)),
      this.refreshTables(range),
      this.refreshPoolGauge(),
    ]);
    const failure = results.find((result) => result.status === "rejected");
    if (failure) throw failure.reason;
    const requests = await this.trends.get(this.M.HTTP_REQUESTS_TOTAL); // already fetched this cycle
    this.freshness.mark("golden", this.cadence, requests.stale);
  }

  async refreshChart(spec, chart) {
    const data = await spec.load(this.trends);
    if (spec.dynamicSeries) chart.seriesSpec = data.series.length ? data.series : [{ label: "messages" }];
    else chart.seriesSpec = [...(spec.series ?? [{ label: "" }]), ...(data.compareSeries ?? [])];
    if (data.unit && !spec.unit) chart.options.unit = data.unit;
    chart.setData(data.timestamps ?? [], [...data.columns, ...(data.compareColumns ?? [])]);
  }

  // [the signal's series, the same a day or a week earlier (null without a comparison)].
  async incidentPrimary(signal) {
    const M = this.M;
    const one = async (metric, key) => {
      const body = await this.trends.get(metric);
      return [column(body, key), compareColumn(body, key)];
    };
    if (signal === "latency") return one(M.HTTP_REQUEST_DURATION_SECONDS, "p95");
    if (signal === "traffic") return one(M.HTTP_REQUESTS_TOTAL, "rate");
    if (signal === "errors") return one(M.HTTP_ERRORS_TOTAL, "rate");
    const [active, max] = await Promise.all([this.trends.get(M.DB_POOL_CONNECTIONS_ACTIVE),
      this.trends.get(M.DB_POOL_CONNECTIONS_MAX)]);
    const [earlierActive, earlierMax] = [compareColumn(active, "value"), compareColumn(max, "value")];
    return [percentOf(column(active, "value"), column(max, "value")),
      earlierActive && earlierMax ? percentOf(earlierActive, earlierMax) : null];
  }

  async refreshIncident(signal, range) {
    const [requests, errors, [primary, earlier]] = await Promise.all([
      this.trends.get(this.M.HTTP_REQUESTS_TOTAL),
      this.trends.get(this.M.HTTP_ERRORS_TOTAL),
      this.incidentPrimary(signal),
    ]);
    const errorRate = percentOf(column(errors, "rate"), column(requests, "rate"));
    const primarySpec = INCIDENT_SERIES[signal];
    const compared = this.trends.compare && earlier;
    this.incident.seriesSpec = [primarySpec, { label: "HTTP error rate", right: true, unit: "%" },
      ...(compared ? [compareSpec(primarySpec.label, this.trends.compare, primarySpec.unit)] : [])];
    this.incident.options.unit = primarySpec.unit;
    const toSeconds = (iso) => (parseTime(iso)?.getTime() ?? 0) / 1000;
    // Errors per time bucket (HTTP errors counted by the metric, rate × step), drawn as bars along the bottom:
    // a storm minute is one tall bar, a quiet hour a few short ones.
    const step = errors.range?.step_seconds ?? 60;
    // A bucket cut by the window (the current minute) has its rate over the seconds it covers: its count is
    // rate × those seconds, not × step, or the newest bar would claim errors that never happened.
    const [windowStart, windowEnd] = [toSeconds(errors.range?.from), toSeconds(errors.range?.to)];
    const errorTimes = errors.timestamps ?? [];
    const covered = (ts) => Math.max(0, Math.min(ts + step, windowEnd || ts + step) - Math.max(ts, windowStart || ts));
    const markers = {
      errorCounts: { timestamps: errorTimes, step,
        values: column(errors, "rate").map((rate, i) => (isNumber(rate) ? Math.round(rate * covered(errorTimes[i])) : null)) },
      deploys: this.config.feature_flags?.deploy_markers ? this.deployTimes().map(toSeconds) : [],
    };
    this.incident.setData(requests.timestamps ?? [], [primary, errorRate, ...(compared ? [earlier] : [])], markers);
  }

  async refreshTables(range) {
    for (const { link, list, filters } of this.listLinks) link.href = this.navigation.hrefForList(list, filters);
    const [slow, failing, categories, slowTraces, errorLogs] = await Promise.all([
      this.api.get("top-routes", { sort: "latency", limit: 10, ...range }),
      this.api.get("top-routes", { sort: "errors", limit: 10, ...range }),
      this.api.get("top-errors", { limit: 10, ...range }),
      this.api.get("traces", { status: "slow", limit: 10, ...range }),
      this.api.get("logs", { level: "ERROR", limit: 10, ...range }),
    ]);
    const latencyThreshold = this.config.thresholds?.api_latency_p95_ms;
    const p95Cell = (value) => el("td", { class: `cc-num cc-tone-text-${statusFor(value, latencyThreshold) ?? "none"}`,
      text: formatValue(value, "ms") });
    const route = (text) => el("td", { class: "cc-route", text: text ?? "" });
    replaceChildren(this.tables.slow, dataTable(
      ["Route", { label: "p95", numeric: true }, { label: "Requests", numeric: true }, { label: "Error rate", numeric: true }],
      (slow.routes ?? []).map((row) => el("tr", {}, route(row.route), p95Cell(row.p95_ms),
        el("td", { class: "cc-num", text: formatNumber(row.requests) }),
        el("td", { class: "cc-num", text: formatValue(row.error_rate_pct, "%") }))),
      "No HTTP requests recorded in this range."));
    replaceChildren(this.tables.failing, dataTable(
      ["Route", { label: "Errors", numeric: true }, { label: "Error rate", numeric: true }, { label: "p95", numeric: true }],
      (failing.routes ?? []).filter((row) => row.errors > 0).map((row) => el("tr", {}, route(row.route),
        el("td", { class: "cc-num", text: formatNumber(row.errors) }),
        el("td", { class: "cc-num", text: formatValue(row.error_rate_pct, "%") }), p95Cell(row.p95_ms))),
      "No failing routes in this range."));
    replaceChildren(this.tables.categories, dataTable(
      ["Error type", { label: "Count", numeric: true }, { label: "Share", numeric: true }],
      (categories.by_type ?? []).map((row) => el("tr", {}, el("td", { text: row.error_type ?? "" }),
        el("td", { class: "cc-num", text: formatNumber(row.count) }),
        el("td", { class: "cc-num", text: formatValue(row.share_pct, "%") }))),
      "No errors in this range."));
    replaceChildren(this.tables.slowTraces, dataTable(
      ["Time (UTC)", "Span", "Route", { label: "Duration", numeric: true }],
      (slowTraces.items ?? []).map((row) => el("tr", {},
        el("td", { class: "cc-nowrap", text: formatShortDateTime(row.ts) }),
        el("td", { class: "cc-event", userText: row.span_name ?? "" }), route(row.route ?? "—"),
        el("td", { class: "cc-num", text: formatValue(row.duration_ms, "ms") }))),
      "No slow traces in this range."));
    replaceChildren(this.tables.errorLogs, dataTable(
      ["Time (UTC)", "Service", "Event", "Message"],
      (errorLogs.items ?? []).map((row) => el("tr", {},
        el("td", { class: "cc-nowrap", text: formatShortDateTime(row.ts) }),
        el("td", { userText: row.service ?? "" }), el("td", { class: "cc-event", userText: row.event ?? "" }),
        el("td", { class: "cc-message-cell", userText: truncate(row.message, 160) }))),
      "No ERROR logs in this range."));
  }

  async refreshPoolGauge() {
    const infrastructure = await this.api.get("infrastructure");
    const pool = infrastructure.postgresql?.pool ?? {};
    replaceChildren(this.poolGauge, gauge({ label: "DB pool utilization", value: pool.utilization_pct ?? null,
      status: pool.status ?? null,
      caption: pool.max ? `${pool.active ?? 0} active · ${pool.idle ?? 0} idle · ${pool.max} max` : "pool not reported" }));
  }
}
