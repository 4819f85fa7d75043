// The Command Center page: wires the API, the live socket, the URL state and every section together.

import { $, $$ } from "./dom.js";
import { Api } from "./api.js";
import { Banner } from "./banner.js";
import { onChartZoom, watchTheme } from "./charts.js";
import { Freshness } from "./freshness.js";
import { GoldenSignals } from "./golden.js";
import { IncidentReportLink } from "./incident_report.js";
import { Infrastructure } from "./infrastructure.js";
import { ErrorGroupsPanel } from "./errors.js";
import { LogsList, TracesList } from "./lists.js";
import { Overview } from "./overview.js";
import { RangePicker } from "./range_picker.js";
import { LiveSocket } from "./socket.js";
import { Tabs } from "./tabs.js";
import { LIST_FILTERS, readState, rememberTab, toSearch } from "./url_state.js";
import { VoiceOperations } from "./voice.js";
import { collapseNavSidebar } from "./sidebar.js";

// Used until /config answers, so a slow or failing API still leaves a working page.
const FALLBACK_CONFIG = {
  thresholds: {}, feature_flags: {},
  refresh_seconds: { health: 10, infrastructure: 10, voice: 10, logs: 15, traces: 30, trends: 30 },
};
const TAB_CADENCE_KEY = { golden: "trends", voice: "voice", infrastructure: "infrastructure", errors: "logs", logs: "logs",
  traces: "traces" };
const SOCKET_PANELS = new Set(["voice", "infrastructure", "logs"]);
const CONFIG_RETRY_MS = 10000;
// Where each vital card and each service of the health matrix leads: the state to set and the element that
// explains it (scrolled into view and focused once there).
const VITAL_TARGETS = {
  latency: { state: { tab: "golden", signal: "latency" }, target: "#cc-signal-latency" },
  traffic: { state: { tab: "golden", signal: "traffic" }, target: "#cc-signal-traffic" },
  errors: { state: { tab: "golden", signal: "errors" }, logs: { level: "ERROR" }, target: "#cc-signal-errors" },
  saturation: { state: { tab: "infrastructure" }, target: "#cc-infra-pool" },
};
const SERVICE_TARGETS = {
  http_api: VITAL_TARGETS.latency,
  websocket_hub: VITAL_TARGETS.traffic,
  voice_sfu: { state: { tab: "voice" }, target: "#cc-panel-voice" },
  postgresql: { state: { tab: "infrastructure" }, target: "#cc-infra-slow-queries" },
  redis: { state: { tab: "infrastructure" }, target: "#cc-infra-redis" },
  s3: { state: { tab: "infrastructure" }, target: "#cc-infra-s3" },
  otel_pipeline: { state: { tab: "infrastructure" }, target: "#cc-infra-otel" },
};

function emptyFilters(list) {
  return Object.fromEntries(LIST_FILTERS[list].map((key) => [key, ""]));
}

class CommandCenter {
  constructor(root, pageConfig) {
    this.root = root;
    this.pageConfig = pageConfig;
    this.state = readState();
    this.timers = new Map();
    this.autoRefresh = $("#cc-autorefresh");
    this.liveRegion = this.makeLiveRegion();
    this.banner = new Banner($("#cc-banner"), { onRetry: () => this.retryNow(), loginUrl: pageConfig.loginUrl });
    this.api = new Api(pageConfig.apiBase, (ok, error) => this.banner.setApi(ok, error));
    this.freshness = new Freshness(root);
    this.pendingReveal = null;
  }

  makeLiveRegion() {
    const region = document.createElement("p");
    region.className = "visually-hidden";
    region.setAttribute("role", "status");
    region.setAttribute("aria-live", "polite");
    this.root.append(region);
    return region;
  }

  announce(text) {
    this.liveRegion.textContent = text;
  }

  async loadConfig() {
    try {
      const [config, links] = await Promise.all([this.api.get("config"), this.api.get("links")]);
      return { config, links };
    } catch {
      setTimeout(() => this.reloadConfig(), CONFIG_RETRY_MS);
      return { config: FALLBACK_CONFIG, links: null };
    }
  }

  async reloadConfig() {
    const { config, links } = await this.loadConfig();
    if (links) {
      Object.assign(this.config, config);
      this.links = links;
      this.scheduleAll();
    }
  }

  async start() {
    // Triage first: the overview loads while the configuration is still on its way.
    this.config = { ...FALLBACK_CONFIG };
    const shared = { api: this.api, freshness: this.freshness, config: this.config, pageConfig: this.pageConfig,
      getState: () => this.state, openLogsWindow: (from, to) => this.openLogsWindow(from, to) };
    const navigation = this.navigation();
    this.overview = new Overview(this.root, { ...shared, links: navigation, announce: (text) => this.announce(text) });
    this.firstOverview = this.run("overview");
    const { config, links } = await this.loadConfig();
    Object.assign(this.config, config);
    this.links = links;
    this.sections = {
      golden: new GoldenSignals($("#cc-panel-golden"), { ...shared, navigation, setSignal: (signal) => this.update({ signal }),
        setCompare: (compare) => this.update({ compare }),
        deployTimes: () => (this.overview.server?.last_deploy_at ? [this.overview.server.last_deploy_at] : []) }),
      voice: new VoiceOperations($("#cc-panel-voice"), shared),
      infrastructure: new Infrastructure($("#cc-panel-infrastructure"), shared),
      errors: new ErrorGroupsPanel($("#cc-panel-errors"), { ...shared, navigation }),
      logs: new LogsList($("#cc-panel-logs"), { ...shared, navigation }),
      traces: new TracesList($("#cc-panel-traces"), { ...shared, navigation, links: () => this.links }),
    };
    this.rangePicker = new RangePicker(this.root, (range) => this.update(range));
    this.incidentReport = new IncidentReportLink($("#cc-incident-report"), this.api);
    this.tabs = new Tabs($("[role=tablist]", this.root), (tab) => this.update({ tab }));
    for (const link of $$("[data-goto-tab]", this.root)) {
      link.addEventListener("click", (event) => {
        event.preventDefault();
        this.update({ tab: link.dataset.gotoTab, logs: emptyFilters("logs") });
      });
    }
    this.autoRefresh.addEventListener("change", () => this.scheduleAll());
    onChartZoom({ onZoom: (from, to) => this.zoomTo(from, to), onReset: () => this.resetZoom() });
    window.addEventListener("popstate", () => {
      this.state = readState();
      this.apply();
    });
    watchTheme();
    this.socket = new LiveSocket(this.pageConfig.socketPath, {
      onEvent: (name, event, meta) => this.onPush(name, event, meta),
      onState: (state, detail) => this.onSocketState(state, detail),
    });
    this.socket.panels = this.socketPanels();
    this.socket.connect();
    this.apply();
    this.root.dataset.ready = "true"; // every control answers from here on (tests wait for it)
  }

  // --- state and navigation ---------------------------------------------------------------------

  update(changes) {
    this.state = { ...this.state, ...changes };
    const search = toSearch(this.state);
    if (search !== window.location.search) {
      window.history.pushState(null, "", `${window.location.pathname}${search}`);
    }
    this.apply();
  }

  apply() {
    rememberTab(this.state.tab);
    this.tabs.show(this.state.tab);
    this.rangePicker.show(this.state);
    this.incidentReport.show(this.state);
    this.socket.subscribe(this.socketPanels());
    this.scheduleAll();
  }

  hrefFor(changes, target = null) {
    return `${window.location.pathname}${toSearch({ ...this.state, ...changes })}${target ?? ""}`;
  }

  // Go somewhere and bring the element that explains it into view, with the keyboard focus on it.
  go(changes, target) {
    this.update(changes);
    this.reveal(target);
  }

  reveal(selector) {
    this.pendingReveal = selector;
    requestAnimationFrame(() => this.revealNow(selector));
  }

  revealNow(selector) {
    const node = selector ? $(selector, this.root) : null;
    if (!node) return;
    if (!node.hasAttribute("tabindex")) node.setAttribute("tabindex", "-1");
    node.scrollIntoView({ block: "start", behavior: "instant" });
    node.focus({ preventScroll: true });
  }

  // Once the tab has loaded, heights above the target may have changed: scroll again if it still has focus.
  settleReveal() {
    const selector = this.pendingReveal;
    this.pendingReveal = null;
    const node = selector ? $(selector, this.root) : null;
    if (node && document.activeElement === node) node.scrollIntoView({ block: "start", behavior: "instant" });
  }

  targetChanges({ state, logs }) {
    return { ...state, ...(logs ? { logs: { ...emptyFilters("logs"), ...logs } } : {}) };
  }

  vitalTarget(name, resource) {
    if (name === "saturation" && resource === "otel_queue") return { state: { tab: "infrastructure" }, target: "#cc-infra-otel" };
    return VITAL_TARGETS[name];
  }

  navigation() {
    const logsFor = (traceId) => ({ tab: "logs", logs: { ...emptyFilters("logs"), trace_id: traceId } });
    const tracesFor = (traceId) => ({ tab: "traces", traces: { ...emptyFilters("traces"), trace_id: traceId } });
    return {
      logsForTrace: (traceId) => this.hrefFor(logsFor(traceId)),
      openLogsForTrace: (traceId) => this.go(logsFor(traceId), "#cc-panel-logs"),
      tracesForTrace: (traceId) => this.hrefFor(tracesFor(traceId)),
      openTracesForTrace: (traceId) => this.go(tracesFor(traceId), "#cc-panel-traces"),
      setFilters: (list, filters) => this.update({ [list]: { ...emptyFilters(list), ...filters } }),
      hrefForList: (list, filters) => this.hrefFor({ tab: list, [list]: { ...emptyFilters(list), ...filters } }),
      openList: (list, filters) => this.go({ tab: list, [list]: { ...emptyFilters(list), ...filters } }, `#cc-panel-${list}`),
      vitalHref: (name) => {
        const target = VITAL_TARGETS[name];
        return this.hrefFor(this.targetChanges(target), target.target);
      },
      openVital: (name, resource) => {
        const target = this.vitalTarget(name, resource);
        this.go(this.targetChanges(target), target.target);
      },
      serviceHref: (service) => {
        const target = SERVICE_TARGETS[service];
        return target ? this.hrefFor(this.targetChanges(target), target.target) : null;
      },
      openService: (service) => {
        const target = SERVICE_TARGETS[service];
        if (target) this.go(this.targetChanges(target), target.target);
      },
    };
  }

  openLogsWindow(fromSeconds, toSeconds) {
    const iso = (seconds) => new Date(seconds * 1000).toISOString();
    this.go({ tab: "logs", logs: { ...emptyFilters("logs"), from: iso(fromSeconds), to: iso(toSeconds) } }, "#cc-panel-logs");
  }

  // Drag-select on a chart: the page's range becomes that window (every chart and the range picker follow).
  zoomTo(fromSeconds, toSeconds) {
    const span = toSeconds - fromSeconds;
    if (!(span >= 60)) return; // narrower than a minute carries no data of its own
    if (this.state.range) this.zoomedFrom = this.state.range;
    const iso = (seconds) => new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
    this.update({ range: null, from: iso(fromSeconds), to: iso(toSeconds) });
    this.announce(`Zoomed to ${iso(fromSeconds)} – ${iso(toSeconds)}; double-click a chart to reset`);
  }

  resetZoom() {
    if (!(this.state.from && this.state.to)) return;
    this.update({ range: this.zoomedFrom ?? "24h", from: null, to: null });
    this.zoomedFrom = null;
  }

  socketPanels() {
    return SOCKET_PANELS.has(this.state.tab) ? ["overview", this.state.tab] : ["overview"];
  }

  // --- refreshing --------------------------------------------------------------------------------

  cadence(name) {
    const key = name === "overview" ? "health" : TAB_CADENCE_KEY[name];
    return this.config.refresh_seconds?.[key] ?? FALLBACK_CONFIG.refresh_seconds[key];
  }

  async run(name, options = {}) {
    const section = name === "overview" ? this.overview : this.sections[name];
    try {
      await section.refresh(options);
    } catch (error) {
      // The banner tells the operator when the API is unreachable; the panel keeps its old figures and says
      // in place what went wrong (a 400 for a bad filter must not leave it "Loading…").
      console.warn(`Command Center: ${name} could not refresh`, error);
      const message = error?.explanation ?? String(error?.message ?? error);
      this.freshness.fail(name === "overview" ? "overview" : name, message);
      section.showError?.(message);
    }
  }

  // Refresh the overview and the visible tab now, then on their cadences while auto-refresh is on.
  scheduleAll() {
    for (const timer of this.timers.values()) clearInterval(timer);
    this.timers.clear();
    const visible = ["overview", this.state.tab];
    // The overview goes first so the tab's many requests never queue in front of it.
    const overview = this.firstOverview ?? this.run("overview");
    this.firstOverview = null;
    overview.then(() => this.run(this.state.tab, { force: true })).then(() => this.settleReveal());
    if (this.autoRefresh.checked) {
      for (const name of visible) this.timers.set(name, setInterval(() => this.run(name), this.cadence(name) * 1000));
    }
    $("#cc-cadence").textContent = this.autoRefresh.checked
      ? `Refreshing every ${this.cadence("overview")}s (this tab every ${this.cadence(this.state.tab)}s)`
      : "Auto-refresh is off; live pushes still arrive";
  }

  retryNow() {
    this.socket.reconnectNow();
    this.scheduleAll();
  }

  // --- live pushes -------------------------------------------------------------------------------

  onSocketState(state, detail) {
    const wasClosed = this.banner.socket.state === "closed";
    this.banner.setSocket(state, detail);
    if (state === "open" && wasClosed) this.run("overview"); // catch up on what was missed offline
  }

  onPush(name, event, { gap }) {
    if (gap) this.run("overview");
    if (name === "error_event") {
      this.overview.addError(event);
      if (this.state.tab === "logs") this.run("logs");
    } else if (name === "error_burst") {
      this.overview.addBurst(event);
      this.announce(`${event.count} more errors arrived in a burst`);
      this.run("overview");
    } else if (name === "health_change") {
      this.overview.applyHealthChange(event);
      if (this.state.tab === "infrastructure") this.run("infrastructure");
    } else if (name === "vital_signs") {
      this.overview.applyVitalPush(event);
    } else if (name === "voice_pulse") {
      this.sections.voice.applyPulse(event);
    }
  }
}

const root = document.getElementById("cc-root");
if (root) {
  collapseNavSidebar();
  const pageConfig = JSON.parse(document.getElementById("cc-config").textContent);
  new CommandCenter(root, pageConfig).start();
}
