// "Last updated Xs ago" per section; yellow "(stale)" once older than twice the section's cadence
// (measured on the client) or when the API itself reports the data behind it as stale.

import { formatAge } from "./format.js";

export class Freshness {
  constructor(root) {
    this.root = root;
    this.sections = new Map();
    setInterval(() => this.paint(), 1000);
  }

  mark(name, cadenceSeconds, serverStale = false) {
    this.sections.set(name, { at: Date.now(), cadenceSeconds, serverStale: Boolean(serverStale) });
    this.paint();
  }

  isStale(name) {
    const section = this.sections.get(name);
    if (!section) return false;
    return section.serverStale || (Date.now() - section.at) / 1000 > 2 * section.cadenceSeconds;
  }

  paint() {
    for (const node of this.root.querySelectorAll("[data-freshness]")) {
      const section = this.sections.get(node.dataset.freshness);
      if (!section) {
        node.textContent = "Loading…";
        continue;
      }
      const stale = this.isStale(node.dataset.freshness);
      node.textContent = `Last updated ${formatAge((Date.now() - section.at) / 1000)} ago${stale ? " (stale)" : ""}`;
      node.classList.toggle("cc-stale", stale);
    }
  }
}
