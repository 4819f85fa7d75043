// The global time range: presets (1h … 30d) or a custom from–to window, entered and shown in UTC.

import { $, $$ } from "./dom.js";
import { formatDateTime } from "./format.js";

const MAX_WINDOW_MS = 30 * 24 * 3600 * 1000;

// <input type=datetime-local> has no zone; the page speaks UTC, so read and write it as UTC.
function fromInput(value) {
  return value ? new Date(`${value}:00Z`) : null;
}

function toInput(iso) {
  return iso ? new Date(iso).toISOString().slice(0, 16) : "";
}

export class RangePicker {
  constructor(root, onChange) {
    this.presets = $$(".cc-range-preset", root);
    this.details = $(".cc-custom-range", root);
    this.form = $("#cc-custom-range-form", root);
    this.error = $(".cc-form-error", this.form);
    this.summary = $("summary", this.details);
    for (const button of this.presets) {
      button.addEventListener("click", () => onChange({ range: button.dataset.range, from: null, to: null }));
    }
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const from = fromInput(this.form.elements.from.value);
      const to = fromInput(this.form.elements.to.value);
      const problem = this.validate(from, to);
      this.error.hidden = !problem;
      this.error.textContent = problem ?? "";
      if (problem) return;
      this.details.open = false;
      onChange({ range: null, from: from.toISOString(), to: to.toISOString() });
    });
  }

  validate(from, to) {
    if (!from || !to || Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) return "Enter both times.";
    if (from >= to) return "“From” must be before “To”.";
    if (to - from > MAX_WINDOW_MS) return "The window can be at most 30 days.";
    if (Date.now() - from.getTime() > MAX_WINDOW_MS) return "Data is kept for 30 days; pick a later start.";
    return null;
  }

  show(state) {
    const custom = Boolean(state.from && state.to);
    for (const button of this.presets) {
      button.setAttribute("aria-pressed", String(!custom && button.dataset.range === state.range));
    }
    this.summary.textContent = custom ? `Custom: ${formatDateTime(state.from)} – ${formatDateTime(state.to)} UTC` : "Custom…";
    this.summary.classList.toggle("cc-active", custom);
    this.form.elements.from.value = toInput(state.from);
    this.form.elements.to.value = toInput(state.to);
  }
}
