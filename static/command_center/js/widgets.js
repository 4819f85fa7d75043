// Gauges, bar lists and key/value lists: small accessible widgets drawn with DOM/SVG, no chart library.

import { el, replaceChildren, svg } from "./dom.js";
import { DASH, formatNumber, isNumber } from "./format.js";
import { signalBadge } from "./status.js";

// A half-circle gauge (0..max) with the value and its status in words underneath.
export function gauge({ label, value, max = 100, unit = "%", status = null, caption = "" }) {
  const fraction = isNumber(value) ? Math.min(1, Math.max(0, value / max)) : 0;
  const radius = 40;
  const arc = (to) => {
    const angle = Math.PI * (1 - to);
    const x = 50 + radius * Math.cos(angle);
    const y = 50 - radius * Math.sin(angle);
    return `M 10 50 A ${radius} ${radius} 0 0 1 ${x.toFixed(2)} ${y.toFixed(2)}`;
  };
  const text = isNumber(value) ? `${formatNumber(value)}${unit === "%" ? "%" : ` ${unit}`}` : DASH;
  const drawing = svg("svg", { viewBox: "0 0 100 56", class: "cc-gauge-svg", "aria-hidden": "true" },
    svg("path", { d: arc(1), class: "cc-gauge-track" }),
    ...(fraction > 0 ? [svg("path", { d: arc(fraction), class: `cc-gauge-fill cc-tone-${status ?? "unknown"}` })] : []));
  return el("figure", { class: "cc-gauge", role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": max,
    "aria-valuenow": isNumber(value) ? value : null, "aria-valuetext": text },
  drawing,
  el("figcaption", {},
    el("span", { class: "cc-gauge-value", text }),
    el("span", { class: "cc-gauge-label", text: label }),
    signalBadge(status),
    caption ? el("span", { class: "cc-quiet", text: caption }) : null));
}

// Horizontal bars for a handful of categories (participants per room, pool usage…): label, bar, number.
export function barList(rows, { unit = "", emptyText = "No data." } = {}) {
  if (!rows.length || !rows.some((row) => isNumber(row.value) && row.value > 0)) {
    return el("p", { class: "cc-empty", text: emptyText });
  }
  const max = Math.max(...rows.map((row) => (isNumber(row.value) ? row.value : 0)), 1);
  return el("ul", { class: "cc-bars" }, rows.map((row) => el("li", {},
    el("span", { class: "cc-bar-label", text: row.label }),
    el("span", { class: "cc-bar-track", "aria-hidden": "true" },
      el("span", { class: `cc-bar-fill ${row.tone ? `cc-tone-${row.tone}` : ""}`,
        dataset: { width: Math.round((100 * (row.value || 0)) / max) } })),
    el("span", { class: "cc-bar-value", text: `${formatNumber(row.value)}${unit ? ` ${unit}` : ""}` }))));
}

// CSS cannot read data-width, and the CSP forbids inline style attributes in markup: set widths via CSSOM.
export function applyBarWidths(root) {
  for (const fill of root.querySelectorAll(".cc-bar-fill[data-width]")) {
    fill.style.width = `${fill.dataset.width}%`;
  }
}

export function definitionList(pairs) {
  return el("dl", { class: "cc-kv" }, pairs.filter(Boolean).map(([term, value]) => [
    el("dt", { text: term }), el("dd", {}, value instanceof Node ? value : String(value ?? DASH)),
  ]));
}

export function bigNumber(label, value, unit = "", tone = null) {
  return el("div", { class: "cc-big" },
    el("span", { class: `cc-big-value${tone ? ` cc-tone-text-${tone}` : ""}`, text: isNumber(value) ? formatNumber(value) : DASH }),
    unit ? el("span", { class: "cc-unit", text: unit }) : null,
    el("span", { class: "cc-big-label", text: label }));
}

function fillTable(tbody, rows, emptyText, columnCount) {
  if (!rows.length) {
    replaceChildren(tbody, el("tr", { class: "cc-empty-row" }, el("td", { colspan: columnCount, text: emptyText })));
    return;
  }
  replaceChildren(tbody, rows);
}

export function dataTable(headers, rows, emptyText) {
  const tbody = el("tbody");
  fillTable(tbody, rows, emptyText, headers.length);
  return el("table", { class: "cc-table" },
    el("thead", {}, el("tr", {}, headers.map((header) => el("th", {
      scope: "col", class: header.numeric ? "cc-num" : null, text: header.label ?? header,
    })))),
    tbody);
}
