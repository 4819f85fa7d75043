// Range, tab and filters live in the URL (shareable, back button works); the tab also in localStorage.

const TABS = ["golden", "voice", "infrastructure", "errors", "logs", "traces"];
const PRESETS = ["1h", "6h", "24h", "7d", "30d"];
const DEFAULT_RANGE = "24h";
export const LIST_FILTERS = {
  logs: ["level", "domain", "service", "search", "trace_id", "group", "from", "to"],
  traces: ["status", "domain", "route", "duration_min", "trace_id", "view", "from", "to"],
  errors: ["service", "search", "new"], // error groups (errors.js): filters only, not a paged list
};
const SIGNALS = ["latency", "traffic", "errors", "saturation"];
// Trend charts' overlay of the same window a day or a week earlier (the trends API's `compare`).
export const COMPARES = ["yesterday", "last_week"];
const TAB_STORAGE_KEY = "kaiku-command-center-tab";

function storedTab() {
  try {
    return localStorage.getItem(TAB_STORAGE_KEY);
  } catch {
    return null; // storage disabled: the URL alone carries the tab
  }
}

export function rememberTab(tab) {
  try {
    localStorage.setItem(TAB_STORAGE_KEY, tab);
  } catch {
    // storage disabled; nothing to remember
  }
}

function validIso(value) {
  return value && !Number.isNaN(new Date(value).getTime()) ? value : null;
}

export function readState(search = window.location.search) {
  const params = new URLSearchParams(search);
  const from = validIso(params.get("from"));
  const to = validIso(params.get("to"));
  const custom = Boolean(from && to);
  const range = PRESETS.includes(params.get("range")) ? params.get("range") : DEFAULT_RANGE;
  const tabParam = params.get("tab");
  const tab = TABS.includes(tabParam) ? tabParam : (TABS.includes(storedTab()) ? storedTab() : "golden");
  const lists = {};
  for (const [list, keys] of Object.entries(LIST_FILTERS)) {
    lists[list] = Object.fromEntries(keys.map((key) => [key, params.get(`${list}_${key}`) ?? ""]));
  }
  return {
    range: custom ? null : range,
    from: custom ? from : null,
    to: custom ? to : null,
    tab,
    signal: SIGNALS.includes(params.get("signal")) ? params.get("signal") : "latency",
    compare: COMPARES.includes(params.get("compare")) ? params.get("compare") : "",
    logs: lists.logs,
    traces: lists.traces,
    errors: lists.errors,
  };
}

export function toSearch(state) {
  const params = new URLSearchParams();
  if (state.from && state.to) {
    params.set("from", state.from);
    params.set("to", state.to);
  } else if (state.range && state.range !== DEFAULT_RANGE) {
    params.set("range", state.range);
  }
  if (state.tab !== "golden") params.set("tab", state.tab);
  if (state.signal !== "latency") params.set("signal", state.signal);
  if (state.compare) params.set("compare", state.compare);
  for (const list of Object.keys(LIST_FILTERS)) {
    for (const [key, value] of Object.entries(state[list])) {
      if (value) params.set(`${list}_${key}`, value);
    }
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

// The global range as API parameters: a preset, or an explicit window.
export function rangeParams(state) {
  return state.from && state.to ? { from: state.from, to: state.to } : { range: state.range ?? DEFAULT_RANGE };
}

// A list's own window (set by a chart click) wins over the global range.
export function listParams(state, list) {
  const filters = { ...state[list] };
  const span = filters.from && filters.to ? { from: filters.from, to: filters.to } : rangeParams(state);
  delete filters.from;
  delete filters.to;
  return { ...filters, ...span };
}
