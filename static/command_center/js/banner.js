// The degraded/offline banner: what is unreachable, what the page is doing about it, and a way to retry.

import { $, el, replaceChildren } from "./dom.js";
import { formatAge } from "./format.js";

export class Banner {
  constructor(node, { onRetry, loginUrl }) {
    this.node = node;
    this.loginUrl = loginUrl;
    this.api = { ok: true, status: null, since: null };
    this.socket = { state: "connecting", retryAt: null };
    this.lastText = "";
    $(".cc-banner-retry", node).addEventListener("click", onRetry);
    this.countdown = el("span", { class: "cc-banner-countdown", "aria-hidden": "true" });
    node.append(this.countdown);
    this.liveState = document.getElementById("cc-live-state");
    setInterval(() => this.paintCountdown(), 1000);
  }

  setApi(ok, error) {
    const status = ok ? null : error?.status ?? 0;
    if (ok === this.api.ok && status === this.api.status) return;
    this.api = { ok, status, since: ok ? null : Date.now() };
    this.paint();
  }

  setSocket(state, detail = null) {
    this.socket = { state, retryAt: state === "closed" ? detail : null };
    this.paint();
  }

  messages() {
    const messages = [];
    if (!this.api.ok) {
      messages.push(this.api.status === 401 || this.api.status === 403
        ? "Your admin session has ended or lost its permission: log in again to keep watching."
        : "Cannot reach the Command Center API. The figures below are from the last successful update;"
          + " retrying automatically.");
    }
    if (this.socket.state === "closed") messages.push("Live updates are offline (WebSocket disconnected).");
    if (this.socket.state === "denied") messages.push("Live updates were refused: this session may not use them.");
    return messages;
  }

  paint() {
    const messages = this.messages();
    const text = messages.join(" ");
    this.node.hidden = !messages.length;
    this.node.dataset.severity = this.api.ok ? "warning" : "error";
    // Rewrite the alert only when its words change, so screen readers announce each problem once.
    if (text !== this.lastText) {
      const textNode = $(".cc-banner-text", this.node);
      replaceChildren(textNode, text);
      if (this.api.status === 401 || this.api.status === 403) {
        textNode.append(" ", el("a", { href: `${this.loginUrl}?next=${encodeURIComponent(window.location.pathname + window.location.search)}`,
          text: "Log in" }));
      }
      this.lastText = text;
    }
    $(".cc-banner-retry", this.node).hidden = this.socket.state !== "closed" && this.api.ok;
    if (this.liveState) {
      const live = this.socket.state === "open";
      this.liveState.textContent = live ? "● Live" : this.socket.state === "connecting" ? "◌ Connecting…" : "○ Offline";
      this.liveState.dataset.live = String(live);
    }
    this.paintCountdown();
  }

  paintCountdown() {
    const parts = [];
    if (this.socket.state === "closed" && this.socket.retryAt) {
      parts.push(`Reconnecting in ${formatAge(Math.max(0, (this.socket.retryAt - Date.now()) / 1000))}.`);
    }
    if (!this.api.ok && this.api.since) parts.push(`API unreachable for ${formatAge((Date.now() - this.api.since) / 1000)}.`);
    this.countdown.textContent = parts.join(" ");
  }
}
