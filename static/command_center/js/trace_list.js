// Traces, not just spans (issue 16): one row per trace, expanded into a waterfall of its kept spans (offsets and
// durations to scale, nesting by depth, errors marked) and the logs of the trace within an adjustable margin.

import { breakable, el, replaceChildren } from "./dom.js";
import { formatDateTime, formatNumber, formatShortDateTime, truncate } from "./format.js";
import { badge } from "./status.js";

// The actions cell of a trace or span row: its logs on this page, and the trace in Tempo when one is configured.
export function traceActions(navigation, traceId, tempo) {
  return el("td", { class: "cc-actions" },
    el("a", { href: navigation.logsForTrace(traceId), class: "cc-trace-link",
      onclick: (event) => {
        event.preventDefault();
        navigation.openLogsForTrace(traceId);
      } }, "Logs"),
    tempo ? el("a", { href: tempo, class: "cc-external", target: "_blank", rel: "noopener noreferrer",
      text: "Open in Tempo" }) : null);
}

const LEVEL_TONES = { ERROR: "red", WARN: "yellow" };
const DEFAULT_MARGIN_SECONDS = 30;
const MAX_MARGIN_SECONDS = 600;
// The waterfall asks for the trace's spans from a little before its first one to a little after its end.
const SPAN_REACH_MS = 5 * 60 * 1000;
const COLUMNS = 8;

function isoAt(milliseconds) {
  return new Date(milliseconds).toISOString();
}

// rows(trace) for the Traces tab when it shows one row per trace (TracesList in lists.js delegates to it).
export class TraceRows {
  constructor({ api, navigation, tempoUrl }) {
    this.api = api;
    this.navigation = navigation;
    this.tempoUrl = tempoUrl;
  }

  rows(trace) {
    const tone = trace.error ? "red" : trace.slow ? "yellow" : "green";
    const words = trace.error ? `${trace.error_count} failed` : trace.slow ? "slow" : "ok";
    // The waterfall's row is added under the trace's row when first expanded (one table row per trace until then).
    let detail = null;
    const toggle = el("button", { type: "button", class: "cc-link-button cc-trace-toggle", "aria-expanded": "false",
      title: `Waterfall of trace ${trace.trace_id}`,
      onclick: () => {
        if (!detail) {
          const cell = el("td", { colspan: COLUMNS });
          detail = el("tr", { class: "cc-detail-row cc-waterfall-row" }, cell);
          row.after(detail);
          this.loadWaterfall(cell, trace, DEFAULT_MARGIN_SECONDS);
        } else {
          detail.hidden = !detail.hidden;
        }
        toggle.setAttribute("aria-expanded", String(!detail.hidden));
      } }, breakable(trace.root_span));
    const tempo = this.tempoUrl(trace.trace_id);
    const row = el("tr", { class: "cc-trace-row", dataset: { traceId: trace.trace_id } },
      el("td", {}, el("time", { datetime: trace.start, title: `${formatDateTime(trace.start)} UTC`, text: formatShortDateTime(trace.start) })),
      el("td", { class: "cc-mono cc-nowrap", title: trace.trace_id, text: truncate(trace.trace_id, 13) }),
      el("td", { class: "cc-event" }, toggle),
      el("td", { userText: trace.service }),
      el("td", { class: "cc-route" }, breakable(trace.route ?? "—")),
      el("td", { class: "cc-num", text: formatNumber(trace.span_count) }),
      el("td", { class: "cc-num" }, badge(tone, `${formatNumber(trace.duration_ms)} ms · ${words}`)),
      traceActions(this.navigation, trace.trace_id, tempo));
    return [row];
  }

  async loadWaterfall(cell, trace, margin) {
    const start = Date.parse(trace.start);
    replaceChildren(cell, el("p", { class: "cc-quiet", role: "status", text: "Loading the trace…" }));
    try {
      const body = await this.api.get("trace-waterfall", {
        trace_id: trace.trace_id, margin,
        from: isoAt(start - SPAN_REACH_MS), to: isoAt(start + trace.duration_ms + SPAN_REACH_MS),
      });
      replaceChildren(cell, this.waterfall(body, cell, trace));
    } catch (error) {
      replaceChildren(cell, el("p", { class: "cc-error-note", role: "alert",
        text: `The trace could not be loaded: ${error?.explanation ?? error}` }));
    }
  }

  waterfall(body, cell, trace) {
    if (!body.found) return el("p", { class: "cc-quiet", text: "No kept spans of this trace in this window." });
    const total = Math.max(body.duration_ms, 1);
    const spans = el("ol", { class: "cc-waterfall", "aria-label": `${body.span_count} spans over ${formatNumber(body.duration_ms)} ms` },
      body.spans.map((span) => {
        const left = (100 * span.offset_ms) / total;
        const width = Math.max((100 * span.duration_ms) / total, 0.4);
        const words = `${span.span_name}, ${span.service}, starts at +${formatNumber(span.offset_ms)} ms, lasts ${formatNumber(span.duration_ms)} ms${span.error ? ", failed" : ""}`;
        const label = el("span", { class: "cc-waterfall-label", title: span.span_name },
          span.error ? el("span", { class: "cc-waterfall-mark", "aria-hidden": "true", text: "✕ " }) : null,
          breakable(span.span_name), el("span", { class: "cc-quiet", text: ` ${span.service}` }));
        const bar = el("span", { class: "cc-waterfall-bar" });
        // The CSP forbids inline style attributes: positions go through CSSOM.
        label.style.paddingLeft = `${span.depth * 14}px`;
        bar.style.left = `${left.toFixed(3)}%`;
        bar.style.width = `${Math.min(width, 100 - left).toFixed(3)}%`;
        return el("li", { class: `cc-waterfall-span${span.error ? " cc-waterfall-error" : ""}`, dataset: { depth: span.depth },
          "aria-label": words },
          label,
          el("span", { class: "cc-waterfall-track", "aria-hidden": "true" }, bar),
          el("span", { class: "cc-num cc-waterfall-ms", text: `+${formatNumber(span.offset_ms)} · ${formatNumber(span.duration_ms)} ms` }));
      }));
    return [
      el("p", { class: "cc-quiet", text: `${body.span_count} kept spans over ${formatNumber(body.duration_ms)} ms${body.spans_truncated ? " (more left out)" : ""}. Nesting follows the times: a span sits under the span that contains it.` }),
      spans,
      this.logsSection(body.logs, cell, trace),
    ];
  }

  logsSection(logs, cell, trace) {
    const input = el("input", { type: "number", name: "margin", min: 0, max: MAX_MARGIN_SECONDS, step: 1,
      value: logs.margin_seconds, class: "cc-margin-input", "aria-label": "Margin around the trace, in seconds" });
    const form = el("form", { class: "cc-margin-form",
      onsubmit: (event) => {
        event.preventDefault();
        if (!form.reportValidity()) return;
        this.loadWaterfall(cell, trace, Number(input.value));
      } },
      el("label", {}, "Logs from ", input, " s before the trace to as long after"),
      el("button", { type: "submit", class: "button cc-button-quiet", text: "Apply" }));
    const rows = logs.items.map((log) => el("tr", {},
      el("td", {}, badge(LEVEL_TONES[log.level] ?? "unknown", log.level)),
      el("td", {}, el("time", { datetime: log.ts, text: formatShortDateTime(log.ts) })),
      el("td", { class: "cc-event" }, breakable(log.event)),
      el("td", { class: "cc-message", userText: truncate(log.message, 200) })));
    return el("section", { class: "cc-waterfall-logs", "aria-label": "Logs of this trace" },
      el("h4", { text: `Logs of this trace (${formatDateTime(logs.from)} – ${formatDateTime(logs.to)} UTC)` }),
      form,
      rows.length
        ? el("table", { class: "cc-table" }, el("tbody", {}, rows))
        : el("p", { class: "cc-quiet cc-waterfall-no-logs", text: "No logs of this trace within the margin." }),
      logs.truncated ? el("p", { class: "cc-quiet", text: "More logs than shown: open them in the Logs tab." }) : null);
  }
}
