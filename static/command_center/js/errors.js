// Error groups (issue 16.2): the overview's top groups and the Errors tab, from the error-groups API.
// A group is what the server's fingerprint says (service, event and message templates); new ones come first.

import { $, el, replaceChildren, svg } from "./dom.js";
import { formatDateTime, formatNumber, formatShortDateTime, truncate } from "./format.js";
import { rangeParams } from "./url_state.js";
import { badge } from "./status.js";

const TAB_LIMIT = 100; // the API's page maximum
const OVERVIEW_LIMIT = 5;
const MESSAGE_CHARS = 160;
const NEW_REASONS = { first_seen_24h: "first seen in the last 24 h", after_deploy: "first seen after the latest deploy" };

// Counts as tiny bars, one per bucket; said in words for screen readers by its title.
export function barSparkline(counts, title) {
  const max = Math.max(1, ...counts);
  const width = 3;
  const bar = (value) => Math.max(value ? 2 : 0.5, (14 * value) / max);
  return svg("svg", { viewBox: `0 0 ${counts.length * (width + 1)} 16`, class: "cc-feed-spark-svg",
    width: counts.length * (width + 1), height: 16, role: "img", "aria-label": title },
  ...counts.map((value, i) => svg("rect", { x: i * (width + 1), width, y: 16 - bar(value), height: bar(value),
    class: value ? "cc-spark-bar" : "cc-spark-bar-empty" })),
  svg("title", { text: title }));
}

function newMark(group) {
  if (!group.new) return null;
  return el("span", { class: "cc-new-group", title: NEW_REASONS[group.new_reason] ?? "new" },
    badge("yellow", "New"), el("span", { class: "visually-hidden", text: ` (${NEW_REASONS[group.new_reason] ?? "new"})` }));
}

function groupLinks(group, navigation) {
  const logs = group.links?.logs;
  const traces = group.links?.traces;
  return [
    logs ? el("a", { href: navigation.hrefForList("logs", logs), class: "cc-group-logs",
      "aria-label": `Logs of error group ${group.event}`,
      onclick: (event) => {
        if (event.ctrlKey || event.metaKey || event.shiftKey) return;
        event.preventDefault();
        navigation.openList("logs", logs);
      } }, "Logs") : null,
    logs && traces ? " · " : null,  // two links side by side would read as one word
    traces ? el("a", { href: navigation.tracesForTrace(traces.trace_id), class: "cc-trace-link",
      "aria-label": `Latest trace of error group ${group.event}`,
      onclick: (event) => {
        if (event.ctrlKey || event.metaKey || event.shiftKey) return;
        event.preventDefault();
        navigation.openTracesForTrace(traces.trace_id);
      } }, `trace ${traces.trace_id.slice(0, 8)}…`) : null,
  ];
}

function sparklineTitle(body, group) {
  const minutes = Math.round((body.sparkline_step_seconds ?? 60) / 60);
  return `errors per ${minutes} min over the window: ${group.sparkline.join(", ")}`;
}

// The Errors tab: every group of the window, filterable by service, new only and text (state in the URL).
export class ErrorGroupsPanel {
  constructor(panel, { api, freshness, config, getState, navigation }) {
    this.panel = panel;
    this.api = api;
    this.freshness = freshness;
    this.getState = getState;
    this.navigation = navigation;
    this.cadence = config.refresh_seconds?.logs ?? 15;
    this.form = $("form[data-list=errors]", panel);
    this.tbody = $("tbody", panel);
    this.emptyNote = $("[data-empty-for=errors]", panel);
    this.errorNote = $("[data-error-for=errors]", panel);
    this.countNote = $("[data-count-for=errors]", panel);
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(this.form);
      navigation.setFilters("errors", { service: data.get("service") ?? "", search: data.get("search") ?? "",
        new: data.get("new") ? "only" : "" });
    });
    this.form.addEventListener("reset", (event) => {
      event.preventDefault();
      navigation.setFilters("errors", {});
    });
  }

  params() {
    const filters = this.getState().errors ?? {};
    const params = { ...rangeParams(this.getState()), limit: TAB_LIMIT };
    for (const key of ["service", "search", "new"]) if (filters[key]) params[key] = filters[key];
    return params;
  }

  syncForm() {
    const filters = this.getState().errors ?? {};
    this.form.elements.namedItem("service").value = filters.service ?? "";
    this.form.elements.namedItem("search").value = filters.search ?? "";
    this.form.elements.namedItem("new").checked = filters.new === "only";
  }

  async refresh() {
    this.syncForm();
    const body = await this.api.get("error-groups", this.params());
    this.errorNote.hidden = true;
    const items = body.items ?? [];
    replaceChildren(this.tbody, items.map((group) => this.row(body, group)));
    const filtered = Object.values(this.getState().errors ?? {}).some(Boolean);
    this.emptyNote.hidden = items.length > 0;
    this.emptyNote.textContent = filtered
      ? "No error group matches these filters in this time range: clear or widen them."
      : "No errors in this time range. ERROR logs and failed spans are grouped here as they arrive.";
    this.countNote.textContent = items.length
      ? `${formatNumber(body.total)} groups, ${formatNumber(body.new_total)} new${body.total > items.length ? `; the ${items.length} largest shown` : ""}`
      : "";
    this.freshness.mark("errors", this.cadence);
  }

  showError(message) {
    replaceChildren(this.tbody);
    this.emptyNote.hidden = true;
    this.countNote.textContent = "";
    this.errorNote.hidden = false;
    this.errorNote.textContent = `The API refused this view: ${message}. Fix or clear the filters.`;
  }

  row(body, group) {
    return el("tr", { class: "cc-group-row", dataset: { group: group.group, new: group.new ? "true" : "false" } },
      el("td", {}, newMark(group) ?? el("span", { class: "cc-quiet", text: "—" })),
      el("td", { class: "cc-event" },
        el("strong", { class: "cc-group-event", userText: group.event || "(no event)" }), " ",
        el("span", { class: "cc-tag", text: group.source === "span" ? "span" : "log" }),
        el("p", { class: "cc-message cc-group-template", title: group.message ?? "",
          userText: truncate(group.message_template, MESSAGE_CHARS) || "(no message)" })),
      el("td", { userText: group.service ?? "" }),
      el("td", { class: "cc-num cc-group-count", text: formatNumber(group.count) }),
      el("td", {}, barSparkline(group.sparkline ?? [], sparklineTitle(body, group))),
      el("td", {}, el("time", { datetime: group.first_seen, title: `${formatDateTime(group.first_seen)} UTC`,
        text: formatShortDateTime(group.first_seen) })),
      el("td", {}, el("time", { datetime: group.last_seen, title: `${formatDateTime(group.last_seen)} UTC`,
        text: formatShortDateTime(group.last_seen) })),
      el("td", { class: "cc-route" }, (group.routes ?? []).join(", ") || "—"),
      el("td", { class: "cc-actions" }, groupLinks(group, this.navigation)));
  }
}

// The overview's short list: the top groups of the last 24 h, new ones first.
export class TopErrorGroups {
  constructor(root, { api, navigation }) {
    this.list = $("#cc-top-groups", root);
    this.note = $("#cc-top-groups-note", root);
    this.api = api;
    this.navigation = navigation;
  }

  async refresh() {
    if (!this.list) return;
    let body;
    try {
      body = await this.api.get("error-groups", { range: "24h", limit: OVERVIEW_LIMIT });
    } catch (error) {
      replaceChildren(this.list);
      this.note.hidden = false;
      this.note.textContent = `Error groups could not be read: ${error?.explanation ?? error?.message ?? error}`;
      return;
    }
    const items = body.items ?? [];
    this.note.hidden = items.length > 0;
    this.note.textContent = "No errors in the last 24 hours.";
    replaceChildren(this.list, items.map((group) => el("li", { class: "cc-top-group", dataset: { group: group.group } },
      newMark(group), " ",
      el("strong", { userText: group.event || "(no event)" }), " ",
      el("span", { class: "cc-quiet", userText: group.service ?? "" }), " ",
      el("span", { class: "cc-group-count", text: `${formatNumber(group.count)} ×` }), " ",
      barSparkline(group.sparkline ?? [], sparklineTitle(body, group)),
      el("p", { class: "cc-message", userText: truncate(group.message_template, MESSAGE_CHARS) }),
      el("p", { class: "cc-quiet" }, groupLinks(group, this.navigation)))));
  }
}
