// Tier 1, always on top: vital-sign cards, service health matrix, live error feed, server metadata.

import { $, $$, el, replaceChildren } from "./dom.js";
import { DASH, formatDateTime, formatDuration, formatNumber, formatTime, formatValue, isNumber, parseTime, truncate } from "./format.js";
import { serviceBadge, signalWord, statusFor } from "./status.js";
import { Sparkline } from "./charts.js";
import { TopErrorGroups, barSparkline } from "./errors.js";

const FEED_SIZE = 25; // error kinds shown
const FEED_FETCH = 100; // newest ERROR logs read on each refresh (the API's page maximum)
const FEED_MESSAGE_CHARS = 300;
const FEED_SPARK_MINUTES = 15;
const MINUTE_MS = 60000;
// card (data-vital) → summary key, the threshold that colours it (traffic has none) and its statistic.
const VITALS = {
  latency: { key: "latency_p95", threshold: "api_latency_p95_ms", stat: "p95" },
  traffic: { key: "traffic_rate", threshold: null, stat: "requests" },
  errors: { key: "error_rate", threshold: "api_error_rate_pct", stat: "5xx rate" },
  saturation: { key: "saturation_pct", threshold: "db_pool_pct", stat: "highest pressure" },
};
const RESOURCES = { db_pool: "DB pool", otel_queue: "OTel queue" };
const SOURCES = { spans: "computed from spans", metrics: "computed from metrics" };

// One error occurrence: pushed frames carry no id, so occurrences are told apart by time and content.
function occurrenceKey(row) {
  return [parseTime(row.ts)?.getTime() ?? row.ts, row.service, row.event, row.trace_id, row.message].join("|");
}

// One error kind: what Sentry would call an issue, the server's error group (telemetry/fingerprints.py):
// "pool exhausted (3960 waiting)" and "(641 waiting)" are one. Every ERROR row of the logs API and every pushed
// error_event carries its group key; a row without one (an older server) is a kind of its own.
function kindKey(row) {
  return row.group ?? JSON.stringify([row.service ?? "", row.event ?? "", row.message ?? ""]);
}

// Normal vs now: the card's value against the same hour of day on the previous 7 days (summary `baseline`).
// Pushes carry bare values, so the verdict is recomputed here with the server's rule: outside [min, max] of
// the 7-day range, judged only with at least MIN_BASELINE_DAYS days of history.
const MIN_BASELINE_DAYS = 3;

export function judgeBaseline(value, baseline) {
  const span = baseline?.range_7d;
  if (!isNumber(value) || !span || (baseline.days ?? 0) < MIN_BASELINE_DAYS) return { unusual: null, direction: null };
  const direction = value > span[1] ? "above" : value < span[0] ? "below" : null;
  return { unusual: direction !== null, direction };
}

// "+12 %" against a baseline (percentage points for a % figure); "" when there is nothing to compare.
function changeText(value, base, unit) {
  if (!isNumber(value) || !isNumber(base)) return "";
  const diff = value - base;
  const sign = diff > 0 ? "+" : diff < 0 ? "−" : "±";
  if (unit === "%") return `${sign}${formatNumber(Math.abs(diff))} pp`;
  if (base === 0) return "";
  return `${sign}${formatNumber(Math.abs((100 * diff) / base))} %`;
}

function windowLabel(vital) {
  if (vital?.window_label) return vital.window_label;
  const seconds = vital?.window_seconds;
  if (!seconds) return null;
  return seconds % 60 === 0 ? `last ${seconds / 60} min` : `last ${seconds} s`;
}

export class Overview {
  // links: {logsForTrace(traceId) → href, openLogsForTrace(traceId), vitalHref(name), openVital(name),
  //         serviceHref(service), openService(service) → true when the service has a place to go}
  constructor(root, { api, freshness, config, links, announce }) {
    this.root = root;
    this.api = api;
    this.freshness = freshness;
    this.config = config;
    this.links = links;
    this.announce = announce;
    this.server = null;
    this.cards = Object.fromEntries($$("[data-vital]", root).map((card) => {
      const baseline = el("p", { class: "cc-card-baseline cc-quiet" });
      $(".cc-card-window", card).after(baseline);
      return [card.dataset.vital, { card, baseline, sparkline: new Sparkline($(".cc-sparkline", card)), lastBaseline: null }];
    }));
    for (const [name, { card }] of Object.entries(this.cards)) {
      const link = $(".cc-card-link", card);
      link.href = links.vitalHref(name);
      link.addEventListener("click", (event) => {
        if (event.ctrlKey || event.metaKey || event.shiftKey) return; // a new tab gets the URL state
        event.preventDefault();
        links.openVital(name, this.saturationResource);
      });
    }
    freshness.bindScope("vitals", $("#cc-vitals", root));
    freshness.bindScope("health", $("#cc-matrix", root));
    this.topGroups = new TopErrorGroups(root, { api, navigation: links });
    this.feed = $("#cc-feed", root);
    this.feedRate = $("#cc-feed-rate", root);
    this.occurrences = new Map(); // occurrenceKey → {at (ms), n, kind}
    this.kinds = new Map(); // kindKey → {row (newest), times: [ms, …], firstSeen, lastSeen, traceId}
    this.kindItems = new Map(); // kindKey → <li>
    this.bursts = []; // [{at, count}] errors the push channel summarised instead of sending one by one
    setInterval(() => this.paintUptime(), 1000);
    setInterval(() => this.paintFeed(), 5000); // "in the last minute" ages even when nothing arrives
  }

  // Read when used: the configuration arrives after the overview's first load.
  get cadence() {
    return this.config.refresh_seconds?.health ?? 10;
  }

  async refresh() {
    const started = Date.now();
    const [summary, errors] = await Promise.all([
      this.api.get("summary"),
      this.api.get("logs", { level: "ERROR", limit: FEED_FETCH, range: "30d" }),
      this.topGroups.refresh(), // says in place when it fails
    ]);
    for (const [name, { key }] of Object.entries(VITALS)) this.paintVital(name, summary.vital_signs?.[key]);
    this.saturationResource = summary.vital_signs?.saturation_pct?.resource ?? null;
    // "Collecting data…" stays up while the server says so or while every card still has no value.
    const noValues = Object.values(VITALS).every(({ key }) => summary.vital_signs?.[key]?.value == null);
    $("#cc-collecting").hidden = !(summary.state === "collecting" || noValues);
    this.paintMatrix(summary.health?.services ?? []);
    this.server = summary.server ?? {};
    this.paintServer();
    // Bursts announced before this read are among its rows now: counting them again would double them.
    this.bursts = this.bursts.filter((burst) => burst.receivedAt >= started);
    this.mergeErrors(errors.items ?? []);
    this.freshness.mark("overview", this.cadence, Boolean(summary.stale || summary.health?.stale));
    this.freshness.mark("vitals", this.cadence, Boolean(summary.stale));
    this.freshness.mark("health", this.cadence, Boolean(summary.health?.stale));
  }

  // A push carries bare numbers; colours come from the configured thresholds.
  applyVitalPush(payload) {
    for (const [name, { key, threshold }] of Object.entries(VITALS)) {
      if (!(key in payload)) continue;
      const value = payload[key];
      const status = threshold ? statusFor(value, this.config.thresholds?.[threshold]) : null;
      this.paintVital(name, { value, status }, { keepSparkline: true });
    }
    // No verdict on staleness: the last API answer's stands.
    this.freshness.mark("overview", this.cadence);
    this.freshness.mark("vitals", this.cadence);
  }

  paintVital(name, vital, { keepSparkline = false } = {}) {
    const { card, sparkline } = this.cards[name];
    const value = vital?.value ?? null;
    const status = value === null ? "unknown" : (vital.status ?? "none");
    card.dataset.status = status;
    $(".cc-value", card).textContent = formatNumber(value);
    if (vital?.unit) $(".cc-unit", card).textContent = vital.unit;
    if (vital && !keepSparkline) { // an API card (a push carries no window)
      const label = windowLabel(vital);
      const line = $(".cc-card-window", card);
      line.textContent = label ? `${VITALS[name].stat} · ${label}` : VITALS[name].stat;
      if (vital.source) line.title = SOURCES[vital.source] ?? `computed from ${vital.source}`;
      else line.removeAttribute("title");
    }
    $(".cc-status-label", card).textContent = status === "none" ? "No threshold" : signalWord(status);
    if (vital && !keepSparkline) this.cards[name].lastBaseline = vital.baseline ?? null;
    this.paintBaseline(name, value, vital?.unit ?? $(".cc-unit", card).textContent);
    if (name === "saturation" && vital?.resource) {
      $(".cc-saturation-source", card).textContent = RESOURCES[vital.resource] ?? vital.resource;
    }
    if (!keepSparkline) {
      const tone = status === "none" ? "neutral" : status;
      sparkline.setData(vital?.sparkline?.timestamps ?? [], vital?.sparkline?.values ?? [], tone, vital?.unit ?? "");
    }
  }

  // "yesterday 180 ms (+12 %) · last week 170 ms (+19 %)", and when the value is outside the 7-day range of
  // this hour an "Unusual" mark, said in words for screen readers too.
  paintBaseline(name, value, unit) {
    const { card, baseline: line, lastBaseline: baseline } = this.cards[name];
    const { unusual, direction } = judgeBaseline(value, baseline);
    card.dataset.unusual = unusual ? direction : "";
    if (!baseline) {
      replaceChildren(line);
      line.hidden = true;
      return;
    }
    line.hidden = false;
    line.title = `Baseline: ${baseline.window_label ?? "same hour, previous 7 days"} (hourly rollup)`;
    const part = (label, base) => el("span", { class: "cc-baseline-part" }, `${label} `,
      el("span", { class: "cc-baseline-value", text: formatValue(base, unit) }),
      changeText(value, base, unit) ? el("span", { class: "cc-baseline-change", text: ` (${changeText(value, base, unit)})` }) : null);
    const span = baseline.range_7d;
    const rangeText = span ? `${formatValue(span[0], unit)}–${formatValue(span[1], unit)}` : null;
    let verdict = null;
    if (unusual) {
      verdict = el("span", { class: "cc-unusual", "data-direction": direction },
        el("span", { "aria-hidden": "true", text: direction === "above" ? "▲ unusual" : "▼ unusual" }),
        el("span", { class: "visually-hidden",
          text: `Unusual: ${direction} the normal range of ${rangeText} for ${baseline.window_label ?? "this hour"}.` }));
    } else if (unusual === false) {
      verdict = el("span", { class: "visually-hidden", text: `Within the normal range of ${rangeText} for this hour.` });
    } else if (span === null || (baseline.days ?? 0) < MIN_BASELINE_DAYS) {
      verdict = el("span", { class: "cc-baseline-note", text: "not enough history" });
    }
    replaceChildren(line,
      part("yesterday", baseline.yesterday), el("span", { "aria-hidden": "true", text: " · " }),
      part("last week", baseline.last_week),
      rangeText ? el("span", { class: "cc-baseline-range", text: ` · normal ${rangeText}` }) : null,
      verdict ? " " : null, verdict);
  }

  paintMatrix(services) {
    const tbody = $("#cc-matrix tbody", this.root);
    if (!services.length) {
      replaceChildren(tbody, el("tr", { class: "cc-empty-row" },
        el("td", { colspan: 3, text: "No health probe has run yet. The probe task runs every 10 s in the Celery worker." })));
      return;
    }
    replaceChildren(tbody, services.map((service) => {
      const name = service.name ?? service.service;
      const href = this.links.serviceHref(service.service);
      const title = href
        ? el("a", { href, class: "cc-service-link", title: `Open what explains ${name}`,
          onclick: (event) => {
            if (event.ctrlKey || event.metaKey || event.shiftKey) return;
            event.preventDefault();
            this.links.openService(service.service);
          } }, name)
        : name;
      return el("tr", { dataset: { service: service.service } },
        el("th", { scope: "row" }, title),
        el("td", { class: "cc-service-status" }, serviceBadge(service.status)),
        el("td", { class: "cc-quiet", text: service.detail ?? "" }));
    }));
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

  // --- the live error feed: one row per error kind ----------------------------------------------------

  // Rows read from the API: each occurrence counts once, however often a refresh reads it again. The same
  // occurrence may already have come in as pushes (they carry no id): it counts as often as either saw it.
  mergeErrors(rows) {
    const seen = new Map();
    for (const row of rows) {
      const key = occurrenceKey(row);
      const entry = seen.get(key) ?? { row, n: 0 };
      entry.n += 1;
      seen.set(key, entry);
    }
    for (const [key, { row, n }] of seen) this.record(key, row, n);
    this.paintFeed();
  }

  addError(row) {
    const key = occurrenceKey(row);
    const known = this.occurrences.get(key);
    this.record(key, row, (known?.pushed ?? 0) + 1, true);
    const item = this.kindItems.get(kindKey(row));
    this.paintFeed();
    const fresh = this.kindItems.get(kindKey(row));
    if (fresh) {
      fresh.classList.remove("cc-new");
      void fresh.offsetWidth; // restart the flash
      fresh.classList.add("cc-new");
      setTimeout(() => fresh.classList.remove("cc-new"), 4000);
    }
    // Auto-scroll to the newest entry unless the operator is reading an expanded one.
    if (!item?.dataset.expanded && !$(".cc-feed-item[data-expanded]", this.feed)) this.feed.scrollTop = 0;
  }

  addBurst({ count, since, ts }) {
    this.bursts.push({ at: parseTime(since ?? ts)?.getTime() ?? Date.now(), count: Number(count) || 0, receivedAt: Date.now() });
    this.paintFeed();
  }

  record(key, row, count, pushed = false) {
    const at = parseTime(row.ts)?.getTime() ?? Date.now();
    const kind = kindKey(row);
    const known = this.occurrences.get(key) ?? { at, n: 0, pushed: 0, kind };
    const extra = Math.max(0, count - known.n);
    known.n += extra;
    if (pushed) known.pushed = count;
    this.occurrences.set(key, known);
    if (!extra) return;
    const group = this.kinds.get(kind) ?? { row, times: [], firstSeen: at, lastSeen: at, traceId: null };
    for (let i = 0; i < extra; i += 1) group.times.push(at);
    if (at >= group.lastSeen) {
      group.lastSeen = at;
      group.row = row;
      if (row.trace_id) group.traceId = row.trace_id;
    } else if (!group.traceId && row.trace_id) {
      group.traceId = row.trace_id;
    }
    group.firstSeen = Math.min(group.firstSeen, at);
    this.kinds.set(kind, group);
  }

  paintFeed() {
    const now = Date.now();
    const lastMinute = (times) => times.filter((at) => at > now - MINUTE_MS).length;
    const kinds = [...this.kinds.entries()].sort((a, b) => b[1].lastSeen - a[1].lastSeen).slice(0, FEED_SIZE);
    const items = kinds.map(([key, group]) => {
      const item = this.kindItems.get(key) ?? this.feedItem(key, group);
      this.kindItems.set(key, item);
      this.paintKind(item, group, lastMinute(group.times), now);
      return item;
    });
    const shown = new Set(kinds.map(([key]) => key));
    for (const key of [...this.kindItems.keys()]) if (!shown.has(key)) this.kindItems.delete(key);
    // Reorder only when the order changed: moving a node takes the keyboard focus away from it.
    const current = [...this.feed.children];
    if (current.length !== items.length || current.some((node, i) => node !== items[i])) {
      const focused = document.activeElement;
      replaceChildren(this.feed, items);
      if (focused && this.feed.contains(focused)) focused.focus({ preventScroll: true });
    }
    const bursts = this.bursts.filter((burst) => burst.at > now - MINUTE_MS).reduce((sum, burst) => sum + burst.count, 0);
    const perMinute = [...this.kinds.values()].reduce((sum, group) => sum + lastMinute(group.times), 0) + bursts;
    this.feedRate.textContent = `${formatNumber(perMinute)} errors/min`;
    this.feedRate.dataset.count = String(perMinute);
    this.feedRate.classList.toggle("cc-feed-rate-hot", perMinute > 0);
    $("#cc-feed-empty", this.root).hidden = this.feed.children.length > 0;
  }

  feedItem(key, group) {
    const row = group.row;
    const detailId = `cc-feed-detail-${this.kindItems.size}-${Date.now()}`;
    const summary = el("button", { type: "button", class: "cc-feed-summary", "aria-expanded": "false",
      "aria-controls": detailId },
    el("span", { class: "cc-feed-head" },
      el("span", { class: "cc-feed-event", userText: row.event || "(no event)" }),
      el("span", { class: "cc-feed-service", userText: row.service ?? "" }),
      row.domain ? el("span", { class: "cc-tag", text: row.domain }) : null),
    el("span", { class: "cc-feed-message", userText: truncate(row.message, FEED_MESSAGE_CHARS) || "(no message)" }));
    const side = el("div", { class: "cc-feed-side" },
      el("span", { class: "cc-feed-count" }),
      el("span", { class: "cc-feed-spark", "aria-hidden": "true" }),
      el("span", { class: "cc-feed-seen cc-quiet" }),
      el("span", { class: "cc-feed-trace" }));
    const detail = el("div", { class: "cc-feed-detail", id: detailId, hidden: true },
      el("p", { class: "cc-message-full", userText: row.message ?? "" }),
      el("p", { class: "cc-quiet cc-feed-detail-meta" }));
    const item = el("li", { class: "cc-feed-item", dataset: { key } }, summary, side, detail);
    summary.addEventListener("click", () => this.toggle(item, summary.getAttribute("aria-expanded") !== "true"));
    return item;
  }

  paintKind(item, group, perMinute, now) {
    const total = group.times.length;
    const count = $(".cc-feed-count", item);
    count.textContent = `${formatNumber(perMinute)} in last min`;
    count.title = `${formatNumber(total)} seen on this page in all`;
    count.dataset.lastMinute = String(perMinute);
    count.dataset.total = String(total);
    count.classList.toggle("cc-feed-count-hot", perMinute > 0);
    const seen = $(".cc-feed-seen", item);
    replaceChildren(seen, "last ", el("time", { datetime: new Date(group.lastSeen).toISOString(), text: formatTime(new Date(group.lastSeen).toISOString()) }),
      " · first ", el("time", { datetime: new Date(group.firstSeen).toISOString(), text: formatTime(new Date(group.firstSeen).toISOString()) }));
    replaceChildren($(".cc-feed-spark", item), this.rateSparkline(group.times, now));
    const traceHost = $(".cc-feed-trace", item);
    const traceId = group.traceId;
    if (traceHost.dataset.trace !== (traceId ?? "")) {
      traceHost.dataset.trace = traceId ?? "";
      replaceChildren(traceHost, traceId ? el("a", { class: "cc-trace-link", href: this.links.logsForTrace(traceId),
        title: "Show the logs of the latest trace of this error", "aria-label": `Logs of trace ${traceId}`,
        onclick: (event) => {
          event.preventDefault();
          this.links.openLogsForTrace(traceId);
        } }, `trace ${traceId.slice(0, 8)}…`) : null);
    }
    $(".cc-feed-detail-meta", item).textContent = `${formatNumber(total)} × · first seen ${formatDateTime(new Date(group.firstSeen).toISOString())} UTC`
      + ` · last seen ${formatDateTime(new Date(group.lastSeen).toISOString())} UTC · ${group.row.service ?? ""} · ${group.row.domain ?? ""}`;
  }

  // Errors per minute over the last 15 minutes, as 15 tiny bars.
  rateSparkline(times, now) {
    const counts = new Array(FEED_SPARK_MINUTES).fill(0);
    for (const at of times) {
      const age = Math.floor((now - at) / MINUTE_MS);
      if (age >= 0 && age < FEED_SPARK_MINUTES) counts[FEED_SPARK_MINUTES - 1 - age] += 1;
    }
    return barSparkline(counts, `errors per minute, last ${FEED_SPARK_MINUTES} min: ${counts.join(", ")}`);
  }

  toggle(item, open) {
    $(".cc-feed-summary", item).setAttribute("aria-expanded", String(open));
    $(".cc-feed-detail", item).hidden = !open;
    if (open) item.dataset.expanded = "";
    else delete item.dataset.expanded;
  }
}
