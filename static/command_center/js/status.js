// Status rendering: every colour comes with a shape and a word, so colour is never the only cue.

import { el } from "./dom.js";
import { isNumber } from "./format.js";

const SIGNAL_WORDS = { green: "OK", yellow: "Warning", red: "Critical", unknown: "No data" };
const SERVICE_TONES = {
  healthy: "green", degraded: "yellow", down: "red", unavailable: "unknown", unknown: "unknown",
};

// Mirrors telemetry.contract.status_for: green before warn, yellow up to and including crit, red beyond.
export function statusFor(value, threshold) {
  if (!isNumber(value) || !threshold) return null;
  const sign = threshold.higher_is_worse ? 1 : -1;
  if (sign * value < sign * threshold.warn) return "green";
  if (sign * value <= sign * threshold.crit) return "yellow";
  return "red";
}

export function signalWord(status) {
  return SIGNAL_WORDS[status ?? "unknown"] ?? SIGNAL_WORDS.unknown;
}

function serviceTone(status) {
  return SERVICE_TONES[status] ?? "unknown";
}

// A small pill: shape icon (CSS draws circle / triangle / square / ring per tone) plus text.
export function badge(tone, text) {
  return el("span", { class: `cc-badge cc-tone-${tone ?? "unknown"}` },
    el("span", { class: "cc-status-icon", "aria-hidden": "true" }), el("span", { text }));
}

export function signalBadge(status, label = null) {
  return badge(status ?? "unknown", label ?? signalWord(status));
}

export function serviceBadge(status) {
  return badge(serviceTone(status), status ?? "unknown");
}
