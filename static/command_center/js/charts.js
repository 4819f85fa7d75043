// uPlot wrappers: time-series charts with a shared cursor, sparklines, stacked areas/bars, markers.
// Colours come from the admin's CSS variables (and ours derived from them), so both themes look native.

import { el, replaceChildren } from "./dom.js";
import { formatNumber, formatValue, isNumber } from "./format.js";

const SYNC_KEY = "cc-time";
const DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3], [1, 5], [8, 8]];
const liveCharts = new Set();

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

function stack(columns) {
  const sums = [];
  let running = columns[0] ? columns[0].map(() => 0) : [];
  for (const values of columns) {
    running = running.map((total, i) => total + (isNumber(values[i]) ? values[i] : 0));
    sums.push(running);
  }
  return sums;
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
  return {
    hooks: {
      draw: [(u) => {
        const colors = palette();
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
    this.markers = { errors: [], deploys: [] };
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
    this.markers = { errors: markers.errors ?? [], deploys: markers.deploys ?? [] };
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
    const shown = this.options.stacked ? stack(this.columns) : this.columns;
    // Stacked series are drawn top-down so each lower band paints over the one above it.
    const order = this.options.stacked ? [...shown.keys()].reverse() : [...shown.keys()];
    const data = [this.timestamps, ...order.map((i) => shown[i])];
    this.plot = new window.uPlot(this.plotOptions(order), data, this.canvasHost);
  }

  plotOptions(order) {
    const colors = palette();
    const { unit, rightUnit, stacked, bars, height, onPick, sync } = this.options;
    const hasRight = this.seriesSpec.some((spec) => spec.right);
    const axis = (extra) => ({
      stroke: colors.quiet, font: colors.font, labelFont: colors.font,
      grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid, width: 1 }, ...extra,
    });
    const series = order.map((index) => {
      const spec = this.seriesSpec[index];
      const color = spec.color ?? colors.series[index % colors.series.length];
      return {
        label: spec.label,
        scale: spec.right ? "right" : "y",
        stroke: color,
        width: 2,
        dash: stacked || bars ? [] : DASHES[index % DASHES.length],
        fill: stacked || bars || spec.fill ? withAlpha(color, bars ? 0.85 : 0.35) : undefined,
        paths: bars ? window.uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
        points: { show: false },
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
      cursor: { sync: sync ? { key: SYNC_KEY } : undefined, drag: { x: false, y: false } },
      legend: { live: true },
      scales: { x: { time: true }, y: { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
        right: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        axis({ values: timeLabels }),
        axis({ label: unit, size: 56, values: (u, splits) => splits.map((v) => formatNumber(v)) }),
        ...(hasRight ? [axis({ scale: "right", side: 1, label: rightUnit, size: 56, grid: { show: false },
          values: (u, splits) => splits.map((v) => formatNumber(v)) })] : []),
      ],
      series: [{ value: (u, ts) => (ts ? `${new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC` : "") },
        ...series],
      plugins: [markerPlugin(this)],
      hooks: {
        ready: onPick ? [(u) => {
          u.over.classList.add("cc-pickable");
          u.over.addEventListener("click", () => {
            const idx = u.cursor.idx;
            if (idx === null || idx === undefined) return;
            const step = this.timestamps.length > 1 ? this.timestamps[1] - this.timestamps[0] : 60;
            onPick(u.data[0][idx], step);
          });
        }] : [],
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

// A tiny 1-hour trend under a vital-sign card: no axes, no legend, no cursor.
export class Sparkline {
  constructor(container) {
    this.container = container;
    this.timestamps = [];
    this.values = [];
    this.tone = "unknown";
    this.plot = null;
    liveCharts.add(this);
    new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: 40 })).observe(container);
  }

  width() {
    return Math.max(80, this.container.clientWidth);
  }

  setData(timestamps, values, tone) {
    this.timestamps = timestamps ?? [];
    this.values = values ?? [];
    this.tone = tone ?? "unknown";
    this.render();
  }

  render() {
    this.plot?.destroy();
    this.plot = null;
    if (!this.timestamps.length || !this.values.some(isNumber)) {
      replaceChildren(this.container, el("span", { class: "cc-quiet", text: "no data in the last hour" }));
      return;
    }
    this.container.replaceChildren();
    // Sparklines take the card's status colour; without a status they stay in the neutral series colour.
    const tone = ["green", "yellow", "red"].includes(this.tone) ? this.tone : "neutral";
    const color = cssVar(`--cc-tone-${tone}`);
    this.plot = new window.uPlot({
      width: this.width(), height: 40, tzDate: utcDate,
      legend: { show: false }, cursor: { show: false }, select: { show: false },
      axes: [{ show: false }, { show: false }],
      // Scaled to the data, not to zero: the point of a sparkline is the shape of the last hour.
      scales: { x: { time: true }, y: { range: (u, min, max) => {
        const pad = Math.max((max - min) * 0.15, Math.abs(max) * 0.05, 0.001);
        return [min - pad, max + pad];
      } } },
      series: [{}, { stroke: color, width: 2, points: { show: false } }],
    }, [this.timestamps, this.values], this.container);
  }
}

// Charts are drawn with the colours of the moment; redraw them when the admin theme changes.
export function watchTheme() {
  const redrawAll = () => liveCharts.forEach((chart) => chart.render());
  new MutationObserver(redrawAll).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redrawAll);
}
