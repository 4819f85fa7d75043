// The live channel: /ws/admin/observability/ with reconnect (exponential backoff, capped) and resubscribe.

const EVENT_PREFIX = "admin.observability.";
const MAX_BACKOFF_MS = 30000;

export class LiveSocket {
  // handlers: {onEvent(name, payload, raw), onState(state, detail)}; state: connecting|open|closed|denied
  constructor(path, handlers) {
    this.path = path;
    this.handlers = handlers;
    this.panels = ["overview"];
    this.attempt = 0;
    this.socket = null;
    this.retryTimer = null;
    this.retryAt = null;
    this.lastSeq = null;
  }

  url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}${this.path}`;
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryAt = null;
    this.handlers.onState("connecting");
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.lastSeq = null; // seq counts per connection
      this.handlers.onState("open");
      this.sendSubscribe();
    });
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      if (event.code === 4403 || event.code === 4401) {
        this.handlers.onState("denied", event.code);
        return;
      }
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempt);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.handlers.onState("closed", this.retryAt);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) return;
    this.attempt = 0;
    this.connect();
  }

  subscribe(panels) {
    this.panels = panels;
    this.sendSubscribe();
  }

  sendSubscribe() {
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "subscribe", panels: this.panels }));
    }
  }

  receive(text) {
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      return; // not ours to interpret
    }
    if (!event || typeof event.type !== "string" || !event.type.startsWith(EVENT_PREFIX)) return;
    // A gap in seq means pushes were missed (e.g. a reconnect): the page re-polls instead of trusting them.
    const gap = typeof event.seq === "number" && this.lastSeq !== null && event.seq > this.lastSeq + 1;
    if (typeof event.seq === "number") this.lastSeq = event.seq;
    // Frames are flat: {type, ts, seq, ...fields of the event}.
    this.handlers.onEvent(event.type.slice(EVENT_PREFIX.length), event, { gap });
  }
}
