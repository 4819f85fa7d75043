// Tiers 5 and 6: the Logs and Traces lists — filters kept in the URL, cursor "Load more", CSV/JSON export.

import { $, breakable, el, replaceChildren } from "./dom.js";
import { formatDateTime, formatNumber, formatShortDateTime, truncate } from "./format.js";
import { LIST_FILTERS, listParams } from "./url_state.js";
import { badge } from "./status.js";
import { TraceRows, traceActions } from "./trace_list.js";

const PAGE_SIZE = 50;
const LIST_MESSAGE_CHARS = 200;
const LEVEL_TONES = { ERROR: "red", WARN: "yellow" };

function safeExternalUrl(template, values) {
  if (!template) return null;
  let url = template;
  for (const [key, value] of Object.entries(values)) url = url.replaceAll(`{${key}}`, encodeURIComponent(value));
  try {
    const parsed = new URL(url, window.location.href);
    return ["http:", "https:"].includes(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

class ListView {
  // navigation: {setFilters(list, filters), openLogsForTrace(id), openTracesForTrace(id), logsForTrace(id)…}
  constructor(name, panel, { api, freshness, config, getState, navigation }) {
    this.name = name;
    this.panel = panel;
    this.api = api;
    this.freshness = freshness;
    this.getState = getState;
    this.navigation = navigation;
    this.cadence = config.refresh_seconds?.[name] ?? 30;
    this.form = $(`form[data-list=${name}]`, panel);
    this.tbody = $("tbody", panel);
    this.moreButton = $(`[data-more-for=${name}]`, panel);
    this.emptyNote = $(`[data-empty-for=${name}]`, panel);
    this.countNote = $(`[data-count-for=${name}]`, panel);
    this.windowNote = $(`[data-window-for=${name}]`, panel);
    this.errorNote = $(`[data-error-for=${name}]`, panel);
    this.emptyText = this.emptyNote.textContent.trim();
    const cap = config.limits?.export_max_rows ?? 10000;
    for (const note of panel.querySelectorAll("[data-export-cap]")) note.textContent = `Exports stop at ${formatNumber(cap)} rows`;
    this.nextCursor = null;
    this.pages = 0;
    this.rowCount = 0;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!this.form.reportValidity()) return;
      const state = this.getState()[name];
      const filters = Object.fromEntries(new FormData(this.form).entries());
      navigation.setFilters(name, { ...filters, from: state.from, to: state.to });
    });
    this.form.addEventListener("reset", (event) => {
      event.preventDefault();
      navigation.setFilters(name, {});
    });
    this.moreButton.addEventListener("click", () => this.loadMore());
  }

  syncForm() {
    const filters = this.getState()[this.name];
    for (const key of LIST_FILTERS[this.name]) {
      const field = this.form.elements.namedItem(key);
      if (field) field.value = filters[key] ?? "";
    }
    const { from, to } = filters;
    this.windowNote.hidden = !(from && to);
    if (from && to) {
      replaceChildren(this.windowNote, `Showing ${formatDateTime(from)} – ${formatDateTime(to)} UTC (picked on a chart). `,
        el("button", { type: "button", class: "button cc-button-quiet", text: "Use the page's time range",
          onclick: () => this.clearWindow() }));
    }
  }

  clearWindow() {
    this.navigation.setFilters(this.name, { ...this.getState()[this.name], from: "", to: "" });
  }

  params() {
    return listParams(this.getState(), this.name);
  }

  apiPath() {
    return this.name;
  }

  exportHref(format) {
    return this.api.url("export", { type: this.name, format, ...this.params() });
  }

  // Auto-refresh reloads the first page only; once the operator paged further it leaves the list alone.
  async refresh({ force = false } = {}) {
    if (!force && this.pages > 1) return;
    this.syncForm();
    for (const link of this.panel.querySelectorAll(`[data-export=${this.name}]`)) {
      link.href = this.exportHref(link.dataset.format);
    }
    const generation = (this.generation = (this.generation ?? 0) + 1);
    const body = await this.api.get(this.apiPath(), { ...this.params(), limit: PAGE_SIZE });
    if (generation !== this.generation) return; // a newer refresh (other filters, another view) owns the list
    this.errorNote.hidden = true;
    this.rowCount = 0;
    replaceChildren(this.tbody);
    this.append(body);
    this.pages = 1;
    this.freshness.mark(this.name, this.cadence, body.stale);
  }

  showError(message) {
    replaceChildren(this.tbody);
    this.rowCount = 0;
    this.nextCursor = null;
    this.moreButton.hidden = true;
    this.emptyNote.hidden = true;
    this.countNote.textContent = "";
    this.errorNote.hidden = false;
    this.errorNote.textContent = `The API refused this view: ${message}. Fix or clear the filters.`;
  }

  async loadMore() {
    if (!this.nextCursor) return;
    this.moreButton.disabled = true;
    try {
      const body = await this.api.get(this.apiPath(), { ...this.params(), limit: PAGE_SIZE, cursor: this.nextCursor });
      this.append(body);
      this.pages += 1;
    } finally {
      this.moreButton.disabled = false;
    }
  }

  append(body) {
    const items = body.items ?? [];
    for (const item of items) this.tbody.append(...this.rows(item));
    this.rowCount += items.length;
    this.nextCursor = body.next_cursor ?? null;
    this.moreButton.hidden = !this.nextCursor;
    this.emptyNote.hidden = this.rowCount > 0;
    if (!this.rowCount) {
      // Rows exist in this range but none passes the filters, or nothing arrives at all: two different problems.
      const filtered = Object.entries(this.getState()[this.name]).some(([key, value]) => value && !["from", "to", "view"].includes(key));
      this.emptyNote.dataset.reason = body.newest_ts && filtered ? "filters" : "no-data";
      this.emptyNote.textContent = body.newest_ts && filtered
        ? `Nothing matches these filters. Data does arrive (the newest ${this.name === "logs" ? "log" : "span"} in this range is from ${formatDateTime(body.newest_ts)} UTC): clear or widen the filters.`
        : this.emptyText;
    }
    this.countNote.textContent = this.rowCount ? `${formatNumber(this.rowCount)} shown${this.nextCursor ? ", more available" : ""}` : "";
  }
}

export class LogsList extends ListView {
  constructor(panel, options) {
    super("logs", panel, options);
  }

  rows(log) {
    const detailRow = el("tr", { class: "cc-detail-row", hidden: true },
      el("td", { colspan: 7 },
        el("p", { class: "cc-message-full", userText: log.message ?? "" }),
        el("p", { class: "cc-quiet", text: `span ${log.span_id ?? "—"}` }),
        Object.keys(log.attrs ?? {}).length
          ? el("pre", { class: "cc-attrs", text: JSON.stringify(log.attrs, null, 2) }) : null));
    const toggle = el("button", { type: "button", class: "cc-link-button", "aria-expanded": "false",
      title: "Show the full message",
      onclick: () => {
        detailRow.hidden = !detailRow.hidden;
        toggle.setAttribute("aria-expanded", String(!detailRow.hidden));
      } }, truncate(log.message, LIST_MESSAGE_CHARS) || "(no message)");
    const trace = log.trace_id
      ? el("a", { href: this.navigation.tracesForTrace(log.trace_id), class: "cc-trace-link",
        "aria-label": `Trace ${log.trace_id} in the trace index`,
        onclick: (event) => {
          event.preventDefault();
          this.navigation.openTracesForTrace(log.trace_id);
        } }, `${log.trace_id.slice(0, 8)}…`)
      : el("span", { class: "cc-quiet", text: "—" });
    return [el("tr", { class: `cc-level-${(log.level ?? "").toLowerCase()}` },
      el("td", {}, badge(LEVEL_TONES[log.level] ?? "unknown", log.level ?? "?")),
      el("td", {}, el("time", { datetime: log.ts, title: `${formatDateTime(log.ts)} UTC`, text: formatShortDateTime(log.ts) })),
      el("td", { userText: log.service ?? "" }),
      el("td", {}, el("span", { class: "cc-tag", text: log.domain ?? "" })),
      el("td", { class: "cc-event" }, breakable(log.event)),
      el("td", { class: "cc-message" }, toggle),
      el("td", {}, trace)), detailRow];
  }
}

// The Traces tab lists one row per trace (trace-list, expanded into a waterfall) or, with view=spans, every span.
export class TracesList extends ListView {
  constructor(panel, options) {
    super("traces", panel, options);
    this.links = options.links;
    this.tables = { traces: $("#cc-traces-table", panel), spans: $("#cc-spans-table", panel) };
    this.traceRows = new TraceRows({ api: this.api, navigation: this.navigation,
      tempoUrl: (traceId) => safeExternalUrl(this.links()?.tempo?.trace_url_template, { trace_id: traceId }) });
    for (const button of panel.querySelectorAll("[data-trace-preset]")) {
      button.addEventListener("click", () => this.navigation.setFilters("traces", { status: button.dataset.tracePreset }));
    }
  }

  get view() {
    return this.getState().traces.view === "spans" ? "spans" : "traces";
  }

  params() {
    const { view, ...params } = super.params();
    return params;
  }

  apiPath() {
    return this.view === "spans" ? "traces" : "trace-list";
  }

  async refresh(options = {}) {
    const view = this.view;
    for (const [name, table] of Object.entries(this.tables)) table.hidden = name !== view;
    this.tbody = $("tbody", this.tables[view]);
    if (this.shownView !== view) replaceChildren(this.tbody);
    this.shownView = view;
    return super.refresh(options);
  }

  rows(item) {
    return this.view === "spans" ? this.spanRows(item) : this.traceRows.rows(item);
  }

  spanRows(trace) {
    const tone = trace.error ? "red" : trace.slow ? "yellow" : "green";
    const words = trace.error ? "error" : trace.slow ? "slow" : "ok";
    const tempo = safeExternalUrl(this.links()?.tempo?.trace_url_template, { trace_id: trace.trace_id });
    return [el("tr", {},
      el("td", {}, el("time", { datetime: trace.ts, title: `${formatDateTime(trace.ts)} UTC`, text: formatShortDateTime(trace.ts) })),
      el("td", { class: "cc-mono cc-nowrap", title: trace.trace_id ?? "", text: truncate(trace.trace_id ?? "", 13) }),
      el("td", { class: "cc-event" }, breakable(trace.span_name)),
      el("td", { class: "cc-route" }, breakable(trace.route ?? "—")),
      el("td", {}, el("span", { class: "cc-tag", text: trace.domain ?? "" })),
      el("td", { text: trace.status_code ?? "—" }),
      el("td", { class: "cc-num" }, badge(tone, `${formatNumber(trace.duration_ms)} ms · ${words}`)),
      traceActions(this.navigation, trace.trace_id, tempo))];
  }
}
