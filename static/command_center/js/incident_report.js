// Incident report (issue 16): the toolbar's download link follows the page's current window.

import { rangeParams } from "./url_state.js";

export class IncidentReportLink {
  constructor(link, api) {
    this.link = link;
    this.api = api;
  }

  show(state) {
    if (!this.link) return;
    const params = rangeParams(state);
    this.link.href = this.api.url("incident-report", params);
    const words = params.range ? `the last ${params.range}` : `${params.from} – ${params.to}`;
    this.link.title = `Download the incident report of ${words} (zip: report.json, report.md, logs.csv)`;
  }
}
