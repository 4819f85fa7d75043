// WAI-ARIA tabs: arrow keys, Home and End move between tabs; only the selected tab is in the tab order.

import { $$ } from "./dom.js";

export class Tabs {
  constructor(tablist, onSelect) {
    this.tabs = $$("[role=tab]", tablist);
    this.onSelect = onSelect;
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.onSelect(tab.dataset.tab));
      tab.addEventListener("keydown", (event) => this.keydown(event, tab));
    }
  }

  keydown(event, tab) {
    const index = this.tabs.indexOf(tab);
    const targets = {
      ArrowRight: (index + 1) % this.tabs.length,
      ArrowLeft: (index - 1 + this.tabs.length) % this.tabs.length,
      Home: 0,
      End: this.tabs.length - 1,
    };
    if (!(event.key in targets)) return;
    event.preventDefault();
    const next = this.tabs[targets[event.key]];
    next.focus();
    this.onSelect(next.dataset.tab);
  }

  show(name) {
    for (const tab of this.tabs) {
      const selected = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
    }
  }
}
