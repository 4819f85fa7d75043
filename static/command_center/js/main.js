// The Command Center page: wires the API, the live socket, the URL state and every section together.

import { $, $$ } from "./dom.js";
import { Api } from "./api.js";
import { Banner } from "./banner.js";
import { watchTheme } from "./charts.js";
import { Freshness } from "./freshness.js";
import { GoldenSignals } from "./golden.js";
import { Infrastructure } from "./infrastructure.js";
import { LogsList, TracesList } from "./lists.js";
import { Overview } from "./overview.js";
import { RangePicker } from "./range_picker.js";
import { LiveSocket } from "./socket.js";
import { Tabs } from "./tabs.js";
import { LIST_FILTERS, readState, rememberTab, toSearch } from "./url_state.js";
import { VoiceOperations } from "./voice.js";

// Used until /config answers, so a slow or failing API still leaves a working page.
const FALLBACK_CONFIG = {
  thresholds: {}, feature_flags: {},
  refresh_seconds: { health: 10, infrastructure: 10, voice: 10, logs: 15, traces: 30, trends: 30 },
};
const TAB_CADENCE_KEY = { golden: "trends", voice: "voice", infrastructure: "infrastructure", logs: "logs", traces: "traces" };
const SOCKET_PANELS = new Set(["voice", "infrastructure", "logs"]);
const CONFIG_RETRY_MS = 10000;

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
      golden: new GoldenSignals($("#cc-panel-golden"), { ...shared, setSignal: (signal) => this.update({ signal }),
        deployTimes: () => (this.overview.server?.last_deploy_at ? [this.overview.server.last_deploy_at] : []) }),
      voice: new VoiceOperations($("#cc-panel-voice"), shared),
      infrastructure: new Infrastructure($("#cc-panel-infrastructure"), shared),
      logs: new LogsList($("#cc-panel-logs"), { ...shared, navigation }),
      traces: new TracesList($("#cc-panel-traces"), { ...shared, navigation, links: () => this.links }),
    };
    this.rangePicker = new RangePicker(this.root, (range) => this.update(range));
    this.tabs = new Tabs($("[role=tablist]", this.root), (tab) => this.update({ tab }));
    for (const link of $$("[data-goto-tab]", this.root)) {
      link.addEventListener("click", (event) => {
        event.preventDefault();
        this.update({ tab: link.dataset.gotoTab, logs: emptyFilters("logs") });
      });
    }
    this.autoRefresh.addEventListener("change", () => this.scheduleAll());
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
    this.socket.subscribe(this.socketPanels());
    this.scheduleAll();
  }

  hrefFor(changes) {
    return `${window.location.pathname}${toSearch({ ...this.state, ...changes })}`;
  }

  navigation() {
    const logsFor = (traceId) => ({ tab: "logs", logs: { ...emptyFilters("logs"), trace_id: traceId } });
    const tracesFor = (traceId) => ({ tab: "traces", traces: { ...emptyFilters("traces"), trace_id: traceId } });
    return {
      logsForTrace: (traceId) => this.hrefFor(logsFor(traceId)),
      openLogsForTrace: (traceId) => this.update(logsFor(traceId)),
      tracesForTrace: (traceId) => this.hrefFor(tracesFor(traceId)),
      openTracesForTrace: (traceId) => this.update(tracesFor(traceId)),
      setFilters: (list, filters) => this.update({ [list]: { ...emptyFilters(list), ...filters } }),
    };
  }

  openLogsWindow(fromSeconds, toSeconds) {
    const iso = (seconds) => new Date(seconds * 1000).toISOString();
    this.update({ tab: "logs", logs: { ...emptyFilters("logs"), from: iso(fromSeconds), to: iso(toSeconds) } });
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
      // The banner already tells the operator when the API is unreachable; keep the old figures.
      console.warn(`Command Center: ${name} could not refresh`, error);
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
    overview.then(() => this.run(this.state.tab, { force: true }));
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
  const pageConfig = JSON.parse(document.getElementById("cc-config").textContent);
  new CommandCenter(root, pageConfig).start();
}
