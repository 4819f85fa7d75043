// Tier 1, always on top: vital-sign cards, service health matrix, live error feed, server metadata.

import { $, $$, el, replaceChildren } from "./dom.js";
import { DASH, formatDateTime, formatDuration, formatNumber, formatTime, parseTime, truncate } from "./format.js";
import { serviceBadge, signalWord, statusFor } from "./status.js";
import { Sparkline } from "./charts.js";

const FEED_SIZE = 25;
const FEED_MESSAGE_CHARS = 140;
// card (data-vital) → summary key and the threshold that colours it (traffic has none).
const VITALS = {
  latency: { key: "latency_p95", threshold: "api_latency_p95_ms" },
  traffic: { key: "traffic_rate", threshold: null },
  errors: { key: "error_rate", threshold: "api_error_rate_pct" },
  saturation: { key: "saturation_pct", threshold: "db_pool_pct" },
};
const RESOURCES = { db_pool: "DB pool", otel_queue: "OTel queue" };

function feedKey(row) {
  return [row.ts, row.service, row.event, row.trace_id, row.message].join("|");
}

export class Overview {
  // links: {logsForTrace(traceId) → href, openLogsForTrace(traceId)}
  constructor(root, { api, freshness, config, links, announce }) {
    this.root = root;
    this.api = api;
    this.freshness = freshness;
    this.config = config;
    this.links = links;
    this.announce = announce;
    this.feedKeys = new Set();
    this.server = null;
    this.cards = Object.fromEntries($$("[data-vital]", root).map((card) => [card.dataset.vital, {
      card, sparkline: new Sparkline($(".cc-sparkline", card)),
    }]));
    this.feed = $("#cc-feed", root);
    setInterval(() => this.paintUptime(), 1000);
  }

  // Read when used: the configuration arrives after the overview's first load.
  get cadence() {
    return this.config.refresh_seconds?.health ?? 10;
  }

  async refresh() {
    const [summary, errors] = await Promise.all([
      this.api.get("summary"),
      this.api.get("logs", { level: "ERROR", limit: FEED_SIZE, range: "30d" }),
    ]);
    $("#cc-collecting").hidden = summary.state !== "collecting";
    for (const [name, { key }] of Object.entries(VITALS)) this.paintVital(name, summary.vital_signs?.[key]);
    this.paintMatrix(summary.health?.services ?? []);
    this.server = summary.server ?? {};
    this.paintServer();
    this.replaceFeed(errors.items ?? []);
    this.freshness.mark("overview", this.cadence, summary.stale || summary.health?.stale);
  }

  // A push carries bare numbers; colours come from the configured thresholds.
  applyVitalPush(payload) {
    for (const [name, { key, threshold }] of Object.entries(VITALS)) {
      if (!(key in payload)) continue;
      const value = payload[key];
      const status = threshold ? statusFor(value, this.config.thresholds?.[threshold]) : null;
      this.paintVital(name, { value, status }, { keepSparkline: true });
    }
    this.freshness.mark("overview", this.cadence);
  }

  paintVital(name, vital, { keepSparkline = false } = {}) {
    const { card, sparkline } = this.cards[name];
    const value = vital?.value ?? null;
    const status = value === null ? "unknown" : (vital.status ?? "none");
    card.dataset.status = status;
    $(".cc-value", card).textContent = formatNumber(value);
    if (vital?.unit) $(".cc-unit", card).textContent = vital.unit;
    $(".cc-status-label", card).textContent = status === "none" ? "No threshold" : signalWord(status);
    if (name === "saturation" && vital?.resource) {
      $(".cc-saturation-source", card).textContent = RESOURCES[vital.resource] ?? vital.resource;
    }
    if (!keepSparkline) {
      const tone = status === "none" ? "neutral" : status;
      sparkline.setData(vital?.sparkline?.timestamps ?? [], vital?.sparkline?.values ?? [], tone);
    }
  }

  paintMatrix(services) {
    const tbody = $("#cc-matrix tbody", this.root);
    if (!services.length) {
      replaceChildren(tbody, el("tr", { class: "cc-empty-row" },
        el("td", { colspan: 3, text: "No health probe has run yet. The probe task runs every 10 s in the Celery worker." })));
      return;
    }
    replaceChildren(tbody, services.map((service) => el("tr", { dataset: { service: service.service } },
      el("th", { scope: "row", text: service.name ?? service.service }),
      el("td", { class: "cc-service-status" }, serviceBadge(service.status)),
      el("td", { class: "cc-quiet", text: service.detail ?? "" }))));
  }

  applyHealthChange({ service, old_status: oldStatus, new_status: newStatus }) {
    const row = $(`#cc-matrix tr[data-service="${CSS.escape(service ?? "")}"]`, this.root);
    if (!row) return;
    replaceChildren($(".cc-service-status", row), serviceBadge(newStatus));
    const name = $("th", row).textContent;
    this.announce(`${name} changed from ${oldStatus ?? "unknown"} to ${newStatus}`);
  }

  paintServer() {
    const server = this.server ?? {};
    const notReported = "not reported";
    const pairs = [
      ["Version", server.version ?? notReported],
      ["Environment", server.environment ?? notReported],
      ["Uptime", el("span", { class: "cc-uptime", text: DASH })],
      ["Last deploy", server.last_deploy_at ? formatDateTime(server.last_deploy_at) : notReported],
      ["Active users", server.active_users !== undefined ? formatNumber(server.active_users) : notReported],
      ["Guilds", server.guilds !== undefined ? formatNumber(server.guilds) : notReported],
    ];
    replaceChildren($("#cc-meta", this.root), pairs.map(([term, value]) => [
      el("dt", { text: term }), el("dd", {}, value),
    ]));
    this.paintUptime();
  }

  paintUptime() {
    const node = $(".cc-uptime", this.root);
    const started = parseTime(this.server?.started_at);
    if (node) node.textContent = started ? formatDuration((Date.now() - started.getTime()) / 1000) : "not reported";
  }

  replaceFeed(rows) {
    const expanded = new Set($$(".cc-feed-item[data-expanded]", this.feed).map((item) => item.dataset.key));
    this.feedKeys.clear();
    const items = rows.slice(0, FEED_SIZE).map((row) => this.feedItem(row)).filter(Boolean);
    for (const item of items) if (expanded.has(item.dataset.key)) this.toggle(item, true);
    replaceChildren(this.feed, items);
    this.paintFeedEmpty();
  }

  addError(row) {
    const item = this.feedItem(row);
    if (!item) return;
    this.feed.prepend(item);
    while (this.feed.children.length > FEED_SIZE) {
      this.feedKeys.delete(this.feed.lastElementChild.dataset.key);
      this.feed.lastElementChild.remove();
    }
    item.classList.add("cc-new");
    setTimeout(() => item.classList.remove("cc-new"), 4000);
    // Auto-scroll to the newest entry unless the operator is reading an expanded one.
    if (!$(".cc-feed-item[data-expanded]", this.feed)) this.feed.scrollTop = 0;
    this.paintFeedEmpty();
  }

  paintFeedEmpty() {
    $("#cc-feed-empty", this.root).hidden = this.feed.children.length > 0;
  }

  feedItem(row) {
    const key = feedKey(row);
    if (this.feedKeys.has(key)) return null;
    this.feedKeys.add(key);
    const detailId = `cc-feed-detail-${this.feedKeys.size}-${Date.now()}`;
    const summary = el("button", { type: "button", class: "cc-feed-summary", "aria-expanded": "false",
      "aria-controls": detailId },
    el("time", { datetime: row.ts, text: formatTime(row.ts) }),
    el("span", { class: "cc-feed-service", text: row.service ?? "" }),
    el("span", { class: "cc-tag", text: row.domain ?? "" }),
    el("span", { class: "cc-feed-event", text: row.event ?? "" }),
    el("span", { class: "cc-feed-message", text: truncate(row.message, FEED_MESSAGE_CHARS) }));
    const detail = el("div", { class: "cc-feed-detail", id: detailId, hidden: true },
      el("p", { class: "cc-message-full", text: row.message ?? "" }),
      el("p", { class: "cc-quiet", text: `${formatDateTime(row.ts)} UTC · ${row.service ?? ""} · ${row.domain ?? ""}` }));
    const item = el("li", { class: "cc-feed-item", dataset: { key } }, summary,
      row.trace_id ? el("a", { class: "cc-trace-link", href: this.links.logsForTrace(row.trace_id),
        title: "Show the logs of this trace", "aria-label": `Logs of trace ${row.trace_id}`,
        onclick: (event) => {
          event.preventDefault();
          this.links.openLogsForTrace(row.trace_id);
        } }, `trace ${row.trace_id.slice(0, 8)}…`) : null,
      detail);
    summary.addEventListener("click", () => this.toggle(item, summary.getAttribute("aria-expanded") !== "true"));
    return item;
  }

  toggle(item, open) {
    $(".cc-feed-summary", item).setAttribute("aria-expanded", String(open));
    $(".cc-feed-detail", item).hidden = !open;
    if (open) item.dataset.expanded = "";
    else delete item.dataset.expanded;
  }
}
