// uPlot wrappers: time-series charts with a shared cursor, sparklines, stacked areas/bars, markers.
// Colours come from the admin's CSS variables (and ours derived from them), so both themes look native.

import { el, replaceChildren } from "./dom.js";
import { formatTicks, formatValue, isNumber } from "./format.js";

const SYNC_KEY = "cc-time";
const DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3], [1, 5], [8, 8]];
const COMPARE_DASH = [4, 4];
const liveCharts = new Set();
const SPARKLINE_HEIGHT = 48;
// A drag narrower than this is a click (which opens the logs of that moment), not a zoom.
const MIN_DRAG_PX = 6;
const DOUBLE_CLICK_MS = 250;
// Set by the page: a drag-select on any time chart zooms the page's range; a double-click resets it.
const zoomHandlers = { onZoom: null, onReset: null };

export function onChartZoom({ onZoom, onReset }) {
  zoomHandlers.onZoom = onZoom;
  zoomHandlers.onReset = onReset;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function palette() {
  return {
    fg: cssVar("--body-fg"),
    quiet: cssVar("--body-quiet-color"),
    grid: cssVar("--hairline-color"),
    series: [1, 2, 3, 4, 5, 6].map((n) => cssVar(`--cc-series-${n}`)),
    errorMarker: cssVar("--cc-tone-red"),
    deployMarker: cssVar("--cc-deploy-marker"),
    font: `11px ${cssVar("--font-family-primary") || "sans-serif"}`,
  };
}

function withAlpha(color, alpha) {
  // Our palette variables are hex colours; turn #rrggbb into rgba for fills.
  const match = /^#([0-9a-f]{6})$/i.exec(color);
  if (!match) return color;
  const n = parseInt(match[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

function utcDate(ts) {
  return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");
}

function latest(values) {
  return [...(values ?? [])].reverse().find(isNumber) ?? null;
}

// 24-hour UTC labels: times within a day, dates (and times off midnight) across days.
function timeLabels(u, splits) {
  const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0);
  return splits.map((ts) => {
    const iso = new Date(ts * 1000).toISOString();
    const time = iso.slice(11, 16);
    if (span <= 86400) return time;
    return time === "00:00" ? iso.slice(5, 10) : `${iso.slice(5, 10)} ${time}`;
  });
}

function hasData(columns) {
  return columns.some((values) => values.some(isNumber));
}

// Coarse data, drawn honestly: a missing point between two points no further apart than the data's own
// spacing (the median distance between its points, e.g. 15 min for seeded history shown at a 2 min step)
// becomes `undefined`, which uPlot joins over; a longer run of nulls stays `null`, which uPlot draws as a gap.
export function bridge(timestamps, values) {
  const present = [];
  values.forEach((value, i) => { if (isNumber(value)) present.push(i); });
  const out = values.map((value) => (isNumber(value) ? value : null));
  if (present.length < 2) return out;
  const spacings = present.slice(1).map((index, k) => timestamps[index] - timestamps[present[k]]).sort((a, b) => a - b);
  const step = timestamps.length > 1 ? timestamps[1] - timestamps[0] : 0;
  const median = spacings[Math.floor(spacings.length / 2)];
  const allowed = Math.max(step, median) * 1.5;
  for (let k = 1; k < present.length; k += 1) {
    const [a, b] = [present[k - 1], present[k]];
    if (b - a > 1 && timestamps[b] - timestamps[a] <= allowed) {
      for (let i = a + 1; i < b; i += 1) out[i] = undefined;
    }
  }
  return out;
}

// Continuous runs that uPlot will draw (undefined is joined over, null breaks the line).
export function segments(values) {
  let runs = 0;
  let inRun = false;
  for (const value of values) {
    if (isNumber(value)) {
      if (!inRun) runs += 1;
      inRun = true;
    } else if (value === null) {
      inRun = false;
    }
  }
  return runs;
}

// Points with no drawn neighbour would be invisible as lines: show them as dots.
function isolatedIndices(values) {
  const result = [];
  const neighbour = (i, dir) => {
    for (let j = i + dir; j >= 0 && j < values.length; j += dir) {
      if (values[j] === null) return false;
      if (isNumber(values[j])) return true;
    }
    return false;
  };
  values.forEach((value, i) => {
    if (isNumber(value) && !neighbour(i, -1) && !neighbour(i, 1)) result.push(i);
  });
  return result;
}

// Stacked bands: a series without a value where others have one adds 0; where none has a value the band
// is joined over (short gap) or broken (real gap), never drawn as a drop to zero.
function stack(columns) {
  const reporting = columns.filter((values) => values.some(isNumber));
  const length = columns[0]?.length ?? 0;
  const sums = [];
  let running = new Array(length).fill(0);
  for (const values of columns) {
    running = running.map((total, i) => {
      if (!reporting.some((col) => isNumber(col[i]))) {
        return reporting.every((col) => col[i] === undefined) ? undefined : null;
      }
      return (total ?? 0) + (isNumber(values[i]) ? values[i] : 0);
    });
    sums.push(running);
  }
  return sums;
}

// Tick steps that are round in the unit shown (1 min, 15 min, 1 h…; 1 KiB, 512 MiB…), like Grafana's.
const ROUND = [1, 2, 2.5, 5];
const decades = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => 10 ** (from + i));
const DURATION_INCRS_MS = [...decades(-3, 2).flatMap((d) => ROUND.map((m) => m * d)), 500,
  1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000, 900000, 1800000,
  3600000, 7200000, 10800000, 21600000, 43200000, 86400000, 172800000, 604800000];
const BYTE_INCRS = [0, 1, 2, 3, 4].flatMap((power) => [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].map((m) => m * 1024 ** power));

function incrsFor(unit) {
  if (unit === "ms") return DURATION_INCRS_MS;
  if (unit === "s") return DURATION_INCRS_MS.map((ms) => ms / 1000);
  if (unit === "bytes") return BYTE_INCRS;
  return undefined; // uPlot's own 1-2-5 steps
}

// The y axis is as wide as its longest tick label plus the unit label, so the two never overlap.
function axisSize(u, values, axisIdx, cycleNum) {
  const axis = u.axes[axisIdx];
  if (cycleNum > 1 && axis._size) return axis._size;
  let size = (axis.ticks?.size ?? 10) + (axis.gap ?? 5) + 4;
  const longest = (values ?? []).reduce((acc, value) => (String(value).length > acc.length ? String(value) : acc), "");
  if (longest) {
    u.ctx.font = axis.font?.[0] ?? u.ctx.font;
    size += u.ctx.measureText(longest).width / window.devicePixelRatio;
  }
  return Math.ceil(size);
}

// Vertical lines for ERROR logs (solid) and deploys (dashed), drawn on the plot canvas.
function markerPlugin(chart) {
  const drawLines = (u, times, color, dash) => {
    const { ctx } = u;
    const [min, max] = [u.scales.x.min, u.scales.x.max];
    ctx.save();
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5 * window.devicePixelRatio;
    ctx.setLineDash(dash.map((d) => d * window.devicePixelRatio));
    for (const ts of times) {
      if (ts < min || ts > max) continue;
      const x = Math.round(u.valToPos(ts, "x", true));
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
    }
    ctx.restore();
  };
  // Error counts per bucket: bars rising from the bottom, up to a quarter of the plot, with the peak labelled.
  const drawCounts = (u, counts, color, textColor, font) => {
    const values = counts?.values ?? [];
    const max = Math.max(0, ...values.filter(isNumber));
    if (!max) return;
    const { ctx } = u;
    const bottom = u.bbox.top + u.bbox.height;
    const room = u.bbox.height / 4;
    const width = Math.max(1, Math.abs(u.valToPos(counts.step, "x", true) - u.valToPos(0, "x", true)) - 1);
    ctx.save();
    ctx.fillStyle = color;
    counts.timestamps.forEach((ts, i) => {
      const value = values[i];
      if (!isNumber(value) || value <= 0 || ts < u.scales.x.min || ts > u.scales.x.max) return;
      const height = Math.max(2, (room * value) / max);
      ctx.fillRect(Math.round(u.valToPos(ts, "x", true)), bottom - height, width, height);
    });
    ctx.fillStyle = textColor;
    ctx.font = font.replace(/^(\d+)px/, (m, px) => `${px * window.devicePixelRatio}px`);
    ctx.textAlign = "right";
    ctx.fillText(`errors / bucket, peak ${formatValue(max, "")}`, u.bbox.left + u.bbox.width - 4,
      bottom - room - 4 * window.devicePixelRatio);
    ctx.restore();
  };
  return {
    hooks: {
      draw: [(u) => {
        const colors = palette();
        drawCounts(u, chart.markers.errorCounts, withAlpha(colors.errorMarker, 0.45), colors.quiet, colors.font);
        drawLines(u, chart.markers.errors, withAlpha(colors.errorMarker, 0.55), []);
        drawLines(u, chart.markers.deploys, colors.deployMarker, [5, 4]);
      }],
    },
  };
}

/**
 * A time-series chart. `series` = [{label, unit?, right?}], values handed to setData in the same order.
 * Options: unit (left axis), rightUnit, stacked, bars, height, onPick(ts, stepSeconds), sync.
 */
export class TimeChart {
  constructor(container, { title, series, unit = "", rightUnit = "", stacked = false, bars = false,
    height = 220, onPick = null, sync = true,
    emptyText = "No data in this range. Metrics arrive when an OpenTelemetry Collector exports to /v1/metrics." }) {
    this.container = container;
    this.title = title;
    this.seriesSpec = series;
    this.options = { unit, rightUnit, stacked, bars, height, onPick, sync, emptyText };
    this.timestamps = [];
    this.columns = [];
    this.markers = { errors: [], deploys: [], errorCounts: null };
    this.plot = null;
    container.classList.add("cc-chart");
    container.setAttribute("role", "group");
    container.setAttribute("aria-label", title);
    this.summary = el("p", { class: "visually-hidden" });
    this.canvasHost = el("div", { class: "cc-chart-canvas" });
    replaceChildren(container, this.canvasHost, this.summary);
    liveCharts.add(this);
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(container);
  }

  setData(timestamps, columns, markers = {}) {
    this.timestamps = timestamps ?? [];
    this.columns = columns.map((values) => values ?? this.timestamps.map(() => null));
    this.markers = { errors: markers.errors ?? [], deploys: markers.deploys ?? [], errorCounts: markers.errorCounts ?? null };
    if (markers.errorCounts) {
      const total = markers.errorCounts.values.filter(isNumber).reduce((sum, value) => sum + value, 0);
      this.container.dataset.errorBuckets = String(markers.errorCounts.values.filter((value) => value > 0).length);
      this.container.dataset.errorTotal = String(total);
    }
    this.render();
  }

  setMarkers(markers) {
    this.markers = { ...this.markers, ...markers };
    if (this.plot) this.plot.redraw(false);
  }

  render() {
    this.destroyPlot();
    this.summary.textContent = this.describe();
    if (!this.timestamps.length || !hasData(this.columns)) {
      replaceChildren(this.canvasHost, el("p", { class: "cc-chart-empty", text: this.options.emptyText }));
      return;
    }
    this.canvasHost.replaceChildren();
    const bridged = this.columns.map((values) => bridge(this.timestamps, values));
    const shown = this.options.stacked ? stack(bridged) : bridged;
    // Stacked series are drawn top-down so each lower band paints over the one above it.
    const order = this.options.stacked ? [...shown.keys()].reverse() : [...shown.keys()];
    const data = [this.timestamps, ...order.map((i) => shown[i])];
    this.isolated = data.map((values, i) => (i === 0 ? [] : isolatedIndices(values)));
    // For tests and curious operators: how many continuous runs each series is drawn in.
    this.container.dataset.segments = order.map((i) => segments(shown[i])).join(",");
    const overlays = this.seriesSpec.filter((spec) => spec.compare);
    if (overlays.length) this.container.dataset.compare = overlays.map((spec) => spec.label).join("|");
    else delete this.container.dataset.compare;
    this.plot = new window.uPlot(this.plotOptions(order, data), data, this.canvasHost);
  }

  plotOptions(order, data) {
    const colors = palette();
    const { unit, rightUnit, stacked, bars, height, onPick, sync } = this.options;
    const hasRight = this.seriesSpec.some((spec) => spec.right);
    const axis = (extra) => ({
      stroke: colors.quiet, font: colors.font, labelFont: colors.font, labelSize: 16, labelGap: 2,
      grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid, width: 1 }, ...extra,
    });
    // Tick labels in one scale per axis (s/min/h, KiB/MiB/GiB, 1.2k); the axis names that scale.
    const maxOf = (right) => Math.max(0, ...data.slice(1).filter((_, k) => Boolean(this.seriesSpec[order[k]]?.right) === right)
      .flat().filter(isNumber).map(Math.abs));
    const leftLabel = formatTicks([maxOf(false)], unit).label;
    const rightLabel = formatTicks([maxOf(true)], rightUnit).label;
    const ticks = (axisUnit) => (u, splits) => formatTicks(splits, axisUnit).values;
    const series = order.map((index) => {
      const spec = this.seriesSpec[index];
      // An overlay of an earlier window (`compare`): muted, thin and dashed on the same axes.
      const color = spec.color ?? (spec.compare ? colors.quiet : colors.series[index % colors.series.length]);
      return {
        label: spec.label,
        scale: spec.right ? "right" : "y",
        stroke: color,
        width: spec.compare ? 1.5 : 2,
        dash: spec.compare ? COMPARE_DASH : (stacked || bars ? [] : DASHES[index % DASHES.length]),
        fill: stacked || bars || spec.fill ? withAlpha(color, bars ? 0.85 : 0.35) : undefined,
        paths: bars ? window.uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
        // Lines only, except points that have no neighbour to join (they would otherwise not show at all).
        points: { show: true, size: 5, fill: color, filter: (u, seriesIdx) => this.isolated?.[seriesIdx] ?? [] },
        spanGaps: false,
        // The legend shows each series' own value (not the stacked total); the latest one when not hovering.
        value: (u, value, seriesIndex, idx) => formatValue(
          idx === null || idx === undefined ? latest(this.columns[index]) : this.columns[index][idx],
          spec.unit ?? (spec.right ? rightUnit : unit)),
      };
    });
    return {
      width: Math.max(200, this.container.clientWidth),
      height,
      tzDate: utcDate,
      // Drag-select a time window to zoom every chart (the page's range follows); setScale stays off because
      // the page reloads the data for the new window instead of stretching this one.
      cursor: { sync: sync ? { key: SYNC_KEY } : undefined, drag: { x: true, y: false, setScale: false } },
      select: { show: true },
      legend: { live: true },
      scales: { x: { time: true }, y: { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
        right: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        axis({ values: timeLabels }),
        axis({ label: leftLabel || undefined, size: axisSize, values: ticks(unit), incrs: incrsFor(unit) }),
        ...(hasRight ? [axis({ scale: "right", side: 1, label: rightLabel || undefined, size: axisSize, grid: { show: false },
          values: ticks(rightUnit), incrs: incrsFor(rightUnit) })] : []),
      ],
      series: [{ value: (u, ts) => (ts ? `${new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC` : "") },
        ...series],
      plugins: [markerPlugin(this)],
      hooks: {
        ready: [(u) => {
          let downX = null;
          let pickTimer = null;
          u.over.addEventListener("mousedown", (event) => { downX = event.clientX; });
          u.over.addEventListener("dblclick", () => {
            clearTimeout(pickTimer);
            zoomHandlers.onReset?.();
          });
          if (!onPick) return;
          u.over.classList.add("cc-pickable");
          u.over.addEventListener("click", (event) => {
            if (downX !== null && Math.abs(event.clientX - downX) >= MIN_DRAG_PX) return; // that was a drag
            clearTimeout(pickTimer);
            if (event.detail > 1) return; // the second click of a double-click (which resets the zoom)
            const idx = u.cursor.idx;
            if (idx === null || idx === undefined) return;
            const step = this.timestamps.length > 1 ? this.timestamps[1] - this.timestamps[0] : 60;
            const ts = u.data[0][idx];
            // Wait out a possible double-click before leaving for the logs.
            pickTimer = setTimeout(() => onPick(ts, step), DOUBLE_CLICK_MS);
          });
        }],
        setSelect: [(u) => {
          const { left, width } = u.select;
          if (width < MIN_DRAG_PX || !zoomHandlers.onZoom) return;
          const from = u.posToVal(left, "x");
          const to = u.posToVal(left + width, "x");
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          zoomHandlers.onZoom(Math.floor(from), Math.ceil(to));
        }],
      },
    };
  }

  describe() {
    const newest = this.seriesSpec.map((spec, index) => (
      `${spec.label} ${formatValue(latest(this.columns[index]), spec.unit ?? this.options.unit)}`));
    return `${this.title}. Latest: ${newest.join(", ")}.`;
  }

  resize() {
    if (this.plot) this.plot.setSize({ width: Math.max(200, this.container.clientWidth), height: this.options.height });
  }

  destroyPlot() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
}

// A small 1-hour trend under a vital-sign card: no axes or legend; a filled line with the latest point marked,
// short gaps joined like the big charts, and the hour's low and high written beside it so the shape has a scale.
export class Sparkline {
  constructor(container, { unit = "" } = {}) {
    this.container = container;
    this.unit = unit;
    this.timestamps = [];
    this.values = [];
    this.tone = "unknown";
    this.plot = null;
    this.host = el("div", { class: "cc-sparkline-plot" });
    this.range = el("span", { class: "cc-sparkline-range", "aria-hidden": "true" });
    liveCharts.add(this);
    new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: SPARKLINE_HEIGHT })).observe(container);
  }

  width() {
    return Math.max(80, this.host.clientWidth || this.container.clientWidth - 56);
  }

  setData(timestamps, values, tone, unit = this.unit) {
    this.timestamps = timestamps ?? [];
    this.values = values ?? [];
    this.tone = tone ?? "unknown";
    this.unit = unit;
    this.render();
  }

  render() {
    this.plot?.destroy();
    this.plot = null;
    if (!this.timestamps.length || !this.values.some(isNumber)) {
      delete this.container.dataset.segments;
      replaceChildren(this.container, el("span", { class: "cc-quiet", text: "no data in the last hour" }));
      return;
    }
    replaceChildren(this.container, this.host, this.range);
    const numbers = this.values.filter(isNumber);
    const [low, high] = [Math.min(...numbers), Math.max(...numbers)];
    // The hour's high and low; one figure when the line is flat.
    replaceChildren(this.range, el("span", { text: formatValue(high, this.unit) }),
      high !== low ? el("span", { text: formatValue(low, this.unit) }) : null);
    // Sparklines take the card's status colour; without a status they stay in the neutral series colour.
    const tone = ["green", "yellow", "red"].includes(this.tone) ? this.tone : "neutral";
    const color = cssVar(`--cc-tone-${tone}`);
    const values = bridge(this.timestamps, this.values);
    const isolated = isolatedIndices(values);
    this.container.dataset.segments = String(segments(values));
    const lastIndex = values.findLastIndex(isNumber);
    this.plot = new window.uPlot({
      width: this.width(), height: SPARKLINE_HEIGHT, tzDate: utcDate,
      legend: { show: false }, cursor: { show: false }, select: { show: false },
      axes: [{ show: false }, { show: false }],
      padding: [6, 6, 6, 2],
      // Scaled to the data, not to zero: the point of a sparkline is the shape of the last hour.
      scales: { x: { time: true }, y: { range: (u, min, max) => {
        const pad = Math.max((max - min) * 0.15, Math.abs(max) * 0.05, 0.001);
        return [min - pad, max + pad];
      } } },
      series: [{}, { stroke: color, width: 2, fill: withAlpha(color, 0.18),
        points: { show: true, size: 6, fill: color, filter: () => [...new Set([...isolated, lastIndex])] } }],
    }, [this.timestamps, values], this.host);
  }
}

// Charts are drawn with the colours of the moment; redraw them when the admin theme changes.
export function watchTheme() {
  const redrawAll = () => liveCharts.forEach((chart) => chart.render());
  new MutationObserver(redrawAll).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redrawAll);
}
