// Tier 3: voice operations — pulse numbers, Voice Health Score, quality trends and distributions.

import { $, el, replaceChildren, svg } from "./dom.js";
import { formatDuration, formatNumber, formatShortDateTime, formatValue, isNumber } from "./format.js";
import { TimeChart } from "./charts.js";
import { rangeParams } from "./url_state.js";
import { TrendSource, column, labelled, percentOf } from "./trends.js";
import { applyBarWidths, barList, bigNumber, dataTable, gauge } from "./widgets.js";
import { statusFor } from "./status.js";

const QUALITY_LEVELS = ["poor", "fair", "good", "excellent"];
const COMPONENT_LABELS = {
  join_success_pct: ["Join success", "%"],
  packet_loss_p95_pct: ["Packet loss p95", "%"],
  jitter_p95_ms: ["Jitter p95", "ms"],
  crash_rate_pct: ["Session crash rate", "%"],
};

// Worst sessions: what each one is ranked by, with the timeline column and unit drawn for it.
const WORST_SORTS = {
  packet_loss: { label: "packet loss", key: "packet_loss_pct", unit: "%" },
  jitter: { label: "jitter", key: "jitter_ms", unit: "ms" },
  latency: { label: "latency", key: "latency_ms", unit: "ms" },
};
const SPARK_W = 120;
const SPARK_H = 24;

// A session's measure over time as a small line, with a red dot on every bin whose worst quality was poor.
function sessionSparkline(timeline, sort) {
  const { key, label, unit } = WORST_SORTS[sort];
  const times = timeline?.timestamps ?? [];
  const values = timeline?.[key] ?? [];
  const points = times.map((ts, i) => [ts, values[i], timeline.quality?.[i]]).filter(([, value]) => isNumber(value));
  const description = points.length
    ? `${label} over time: ${points.length} points from ${formatValue(Math.min(...points.map((p) => p[1])), unit)} to `
      + `${formatValue(Math.max(...points.map((p) => p[1])), unit)}`
    : `no ${label} measurements`;
  if (!points.length) return el("span", { class: "cc-quiet", text: "—" });
  const [t0, t1] = [points[0][0], points[points.length - 1][0]];
  const top = Math.max(...points.map((p) => p[1]), 1e-9);
  const x = (ts) => (t1 === t0 ? SPARK_W / 2 : 2 + ((ts - t0) / (t1 - t0)) * (SPARK_W - 4));
  const y = (value) => SPARK_H - 2 - (value / top) * (SPARK_H - 4);
  return svg("svg", { class: "cc-session-spark", viewBox: `0 0 ${SPARK_W} ${SPARK_H}`, width: SPARK_W, height: SPARK_H,
    role: "img", "aria-label": description, "data-points": points.length },
  svg("title", { text: description }),
  svg("polyline", { class: "cc-spark-line", points: points.map(([ts, value]) => `${x(ts).toFixed(1)},${y(value).toFixed(1)}`).join(" ") }),
  ...points.filter(([, , quality]) => quality === 0).map(([ts, value]) => svg("circle", { class: "cc-spark-poor",
    cx: x(ts).toFixed(1), cy: y(value).toFixed(1), r: 2 })));
}

function card(title, ...children) {
  const host = el("div", { class: "cc-card-body" }, ...children);
  return { host, node: el("section", { class: "cc-box" }, el("h3", { text: title }), host) };
}

export class VoiceOperations {
  constructor(panel, { api, freshness, config, pageConfig, getState, openLogsWindow }) {
    this.api = api;
    this.freshness = freshness;
    this.config = config;
    this.getState = getState;
    this.M = pageConfig.metrics;
    this.L = pageConfig.labels;
    this.trends = new TrendSource(api);
    this.cadence = config.refresh_seconds?.voice ?? 10;
    const onPick = (ts, step) => openLogsWindow(ts - step, ts + step);
    const slot = $("[data-panel-slot=voice]", panel);

    this.pulse = card("Right now");
    this.score = card("Voice Health Score");
    this.participants = card("Participants per room");
    const top = el("div", { class: "cc-voice-top" }, this.pulse.node, this.score.node, this.participants.node);

    const chartCard = (title, options) => {
      const host = el("div");
      const node = el("figure", { class: "cc-chart-card" }, el("figcaption", { text: title }), host);
      return { node, chart: new TimeChart(host, { title, onPick, ...options }) };
    };
    const p = (unit) => [{ label: "p50", unit }, { label: "p95", unit }];
    const fromPlatform = { emptyText: "No connection metrics in this range: they are read from the Kaiku platform "
      + "database (VOICE_DATABASE_URL) or written by the simulator." };
    this.charts = {
      joins: chartCard("Join success rate", { series: [{ label: "success", unit: "%" }], unit: "%" }),
      loss: chartCard("Packet loss", { series: p("%"), unit: "%", ...fromPlatform }),
      jitter: chartCard("Network jitter", { series: p("ms"), unit: "ms", ...fromPlatform }),
      latency: chartCard("Session latency", { series: p("ms"), unit: "ms", ...fromPlatform }),
      quality: chartCard("Quality score distribution", { series: QUALITY_LEVELS.map((label) => ({ label })),
        stacked: true, bars: true, unit: "samples", ...fromPlatform }),
      rtp: chartCard("RTP packets forwarded", { series: [{ label: "packets", fill: true }], unit: "pkt/s" }),
      duration: chartCard("Session duration", { series: [{ label: "p50" }, { label: "p95" }, { label: "p99" }] }),
    };
    const grid = el("div", { class: "cc-chart-grid" }, Object.values(this.charts).map((entry) => entry.node));
    // Drill-down: the sessions behind the quality percentiles.
    this.worstSort = el("select", { id: "cc-worst-sort", onchange: () => this.refreshWorst().catch(() => {}) },
      Object.entries(WORST_SORTS).map(([value, { label }]) => el("option", { value, text: label })));
    this.worstHost = el("div", { class: "cc-table-host" });
    this.worstCaption = el("p", { class: "cc-quiet" });
    const worst = el("section", { class: "cc-box", id: "cc-voice-worst", tabindex: "-1", "aria-labelledby": "cc-voice-worst-title" },
      el("div", { class: "cc-worst-head" }, el("h3", { id: "cc-voice-worst-title", text: "Worst sessions" }),
        el("label", {}, "Rank by ", this.worstSort)),
      this.worstCaption, this.worstHost);
    const toWorst = el("a", { class: "cc-more-link", href: "#cc-voice-worst", onclick: (event) => {
      event.preventDefault();
      worst.scrollIntoView({ block: "start" });
      worst.focus({ preventScroll: true });
    } }, "Worst sessions of this range →");
    replaceChildren(slot, top, el("section", { class: "cc-box" },
      el("div", { class: "cc-worst-head" }, el("h3", { text: "Quality over time" }), toWorst), grid), worst);
    this.last = { active_sessions: null, active_rooms: null, join_success_rate_1h: null, join_success_rate_24h: null };
  }

  async refresh() {
    const state = this.getState();
    const range = rangeParams(state);
    this.trends.begin(range);
    const [summary, quality] = await Promise.all([this.api.get("voice/summary"), this.api.get("voice/quality", range)]);
    Object.assign(this.last, {
      active_sessions: summary.active_sessions, active_rooms: summary.active_rooms,
      join_success_rate_24h: summary.join_success_rate_24h, crash_rate_24h: summary.crash_rate_24h,
    });
    this.paintPulse();
    this.paintScore(summary.health_score);
    this.paintParticipants(summary.participants_per_room ?? []);
    this.paintQuality(quality);
    await Promise.all([this.paintTrends(), this.refreshWorst()]);
    this.freshness.mark("voice", this.cadence, summary.stale || quality.stale);
  }

  applyPulse(payload) {
    Object.assign(this.last, payload);
    this.paintPulse();
    this.freshness.mark("voice", this.cadence);
  }

  paintPulse() {
    const joinThreshold = this.config.thresholds?.voice_join_success_pct;
    const crashThreshold = this.config.thresholds?.voice_crash_rate_pct;
    const rate = this.last.join_success_rate_1h ?? this.last.join_success_rate_24h;
    const period = this.last.join_success_rate_1h !== null && this.last.join_success_rate_1h !== undefined ? "1 h" : "24 h";
    replaceChildren(this.pulse.host,
      el("div", { class: "cc-big-row" },
        bigNumber("active sessions", this.last.active_sessions),
        bigNumber("active rooms", this.last.active_rooms),
        bigNumber(`join success (${period})`, rate, "%", statusFor(rate, joinThreshold))),
      // Each figure is coloured by its own threshold: the crash rate by voice_crash_rate_pct.
      el("p", { class: `cc-quiet cc-voice-crash cc-tone-text-${statusFor(this.last.crash_rate_24h ?? null, crashThreshold) ?? "none"}`,
        text: `Session crash rate (24 h): ${formatValue(this.last.crash_rate_24h ?? null, "%")}` }));
  }

  paintScore(healthScore) {
    const components = healthScore?.components ?? {};
    const rows = Object.entries(components).map(([key, component]) => {
      // Components are keyed by their threshold name (voice_join_success_pct …); the docs drop the prefix.
      const [label, unit] = COMPONENT_LABELS[key.replace(/^voice_/, "")] ?? [key, ""];
      return el("tr", {}, el("th", { scope: "row", text: label }),
        el("td", { class: "cc-num", text: formatValue(component.value, unit) }),
        el("td", { class: "cc-num", text: component.score === null || component.score === undefined
          ? "—" : formatNumber(component.score * 100) }),
        el("td", { class: "cc-num", text: `${component.weight}%` }));
    });
    replaceChildren(this.score.host,
      gauge({ label: "Voice Health Score", value: healthScore?.score ?? null, unit: "/ 100",
        status: healthScore?.status ?? null,
        caption: healthScore?.score === null || healthScore?.score === undefined
          ? "Needs joins and connection metrics from the last hour." : "" }),
      dataTable(["Component", { label: "Value", numeric: true }, { label: "Score /100", numeric: true },
        { label: "Weight", numeric: true }], rows, "No components yet."));
  }

  paintParticipants(buckets) {
    let previous = 0;
    const rows = buckets.map((bucket) => {
      const label = bucket.le === null ? `> ${formatNumber(previous)}` : `≤ ${formatNumber(bucket.le)}`;
      if (bucket.le !== null) previous = bucket.le;
      return { label: `${label} participants`, value: bucket.count };
    });
    replaceChildren(this.participants.host, barList(rows, { unit: "rooms",
      emptyText: "No room data: the SFU reports kaiku_voice_room_participants once rooms are active." }));
    applyBarWidths(this.participants.host);
  }

  paintQuality(quality) {
    const t = quality.timestamps ?? [];
    this.charts.loss.chart.setData(t, [quality.packet_loss_pct?.p50, quality.packet_loss_pct?.p95]);
    this.charts.jitter.chart.setData(t, [quality.jitter_ms?.p50, quality.jitter_ms?.p95]);
    this.charts.latency.chart.setData(t, [quality.latency_ms?.p50, quality.latency_ms?.p95]);
    this.charts.quality.chart.setData(t, QUALITY_LEVELS.map((level) => quality.quality?.[level]));
  }

  async refreshWorst() {
    const sort = this.worstSort.value || "packet_loss";
    const body = await this.api.get("voice/worst-sessions", { sort, limit: 10, ...rangeParams(this.getState()) });
    const { label, unit } = WORST_SORTS[sort];
    this.worstCaption.textContent = `The 10 sessions of this range with the highest p95 ${label} over their own `
      + "measurements. Sessions are identified by their random session id only; nothing links them to a user.";
    const threshold = (key) => this.config.thresholds?.[key];
    const cell = (value, cellUnit, key) => el("td", {
      class: `cc-num cc-tone-text-${key ? statusFor(value, threshold(key)) ?? "none" : "none"}`, text: formatValue(value, cellUnit) });
    const rows = (body.sessions ?? []).map((item) => el("tr", { dataset: { session: item.session_id } },
      el("td", {}, el("code", { class: "cc-session-id", text: item.session_id })),
      cell(item.packet_loss_p95_pct, "%", "voice_packet_loss_p95_pct"),
      cell(item.jitter_p95_ms, "ms", "voice_jitter_p95_ms"),
      cell(item.latency_p95_ms, "ms"),
      el("td", {}, sessionSparkline(item.timeline, sort)),
      el("td", { text: item.worst_quality ?? "—" }),
      el("td", { class: item.outcome === "crash" ? "cc-outcome-crash" : null, text: item.outcome }),
      el("td", { class: "cc-num", title: item.started_at ? `started ${formatShortDateTime(item.started_at)} UTC` : "",
        text: item.duration_seconds === null ? "—" : `${formatDuration(item.duration_seconds)}${item.outcome === "ongoing" ? " so far" : ""}` })));
    replaceChildren(this.worstHost, dataTable(
      ["Session", { label: "Loss p95", numeric: true }, { label: "Jitter p95", numeric: true },
        { label: "Latency p95", numeric: true }, `${label[0].toUpperCase()}${label.slice(1)} over time (${unit})`,
        "Worst quality", "Outcome", { label: "Duration", numeric: true }],
      rows, "No voice sessions measured in this range."));
  }

  async paintTrends() {
    const [joins, rtp, duration] = await Promise.all([
      this.trends.get(this.M.VOICE_JOINS_TOTAL, this.L.OUTCOME),
      this.trends.get(this.M.VOICE_RTP_PACKETS_FORWARDED_TOTAL),
      this.trends.get(this.M.VOICE_SESSION_DURATION_SECONDS),
    ]);
    const success = labelled(joins, this.L.OUTCOME, "success", "rate");
    const failed = labelled(joins, this.L.OUTCOME, "error", "rate");
    const total = success.map((value, i) => (value ?? 0) + (failed[i] ?? 0));
    this.charts.joins.chart.setData(joins.timestamps ?? [], [percentOf(success, total)]);
    this.charts.rtp.chart.setData(rtp.timestamps ?? [], [column(rtp, "rate")]);
    this.charts.duration.chart.options.unit = duration.unit ?? "";
    this.charts.duration.chart.setData(duration.timestamps ?? [], ["p50", "p95", "p99"].map((key) => column(duration, key)));
  }
}
