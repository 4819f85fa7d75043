// "Last updated Xs ago" per section; "(stale)" once older than twice the section's cadence (measured on the
// client) or when the API itself reports the data behind it as stale. A section marked stale greys its values
// (a colour that no longer means anything must not keep shouting), and a failed load says why in place.
//
// Hysteresis: the API's verdict turns a section stale at once but clears only after two fresh answers in a
// row, and a push (which says nothing about staleness) never clears it, so the label does not flicker.

import { formatAge } from "./format.js";

const CLEAR_AFTER = 2;

export class Freshness {
  constructor(root) {
    this.root = root;
    this.sections = new Map();
    this.scopes = new Map(); // name → elements greyed while that name is stale
    setInterval(() => this.paint(), 1000);
  }

  // serverStale: true/false from an API answer, undefined when the update carries no verdict (a push).
  mark(name, cadenceSeconds, serverStale = undefined) {
    const previous = this.sections.get(name);
    let stale = previous?.serverStale ?? false;
    let freshAnswers = previous?.freshAnswers ?? 0;
    if (serverStale === true) {
      stale = true;
      freshAnswers = 0;
    } else if (serverStale === false || serverStale === null) {
      freshAnswers += 1;
      if (!previous || freshAnswers >= CLEAR_AFTER) stale = false;
    }
    this.sections.set(name, { at: Date.now(), cadenceSeconds, serverStale: stale, freshAnswers, error: null });
    this.paint();
  }

  // The section could not load: say why where its freshness would be.
  fail(name, message) {
    const previous = this.sections.get(name);
    this.sections.set(name, { ...(previous ?? { at: null, cadenceSeconds: 10, serverStale: false, freshAnswers: 0 }),
      error: message });
    this.paint();
  }

  // Grey `element` while `name` is stale (a name may have no label of its own, e.g. the vital cards).
  bindScope(name, element) {
    this.scopes.set(name, [...(this.scopes.get(name) ?? []), element]);
    this.paint();
  }

  isStale(name) {
    const section = this.sections.get(name);
    if (!section || section.at === null) return false;
    return section.serverStale || (Date.now() - section.at) / 1000 > 2 * section.cadenceSeconds;
  }

  paint() {
    for (const node of this.root.querySelectorAll("[data-freshness]")) {
      const name = node.dataset.freshness;
      const section = this.sections.get(name);
      const scope = node.closest(".cc-panel");
      if (!section) {
        node.textContent = "Loading…";
        continue;
      }
      const stale = this.isStale(name);
      const age = section.at === null ? "" : `Last updated ${formatAge((Date.now() - section.at) / 1000)} ago`;
      if (section.error) {
        node.textContent = `Could not load: ${section.error}${age ? ` · ${age}` : ""}`;
      } else {
        // "Updated 1s ago (stale)" contradicts itself when the API judged the data: say which part is late.
        const late = stale && section.serverStale ? " · the newest data is late" : "";
        node.textContent = `${age}${late}${stale ? " (stale)" : ""}`;
      }
      node.classList.toggle("cc-stale", stale);
      node.classList.toggle("cc-load-error", Boolean(section.error));
      if (scope) scope.dataset.stale = String(stale);
    }
    for (const [name, elements] of this.scopes) {
      for (const element of elements) element.dataset.stale = String(this.isStale(name));
    }
  }
}
