// Number, time and duration formatting shared by every panel.

const NUMBER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
const PRECISE = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const INTEGER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export const DASH = "—";

export function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

export function formatNumber(value, { precise = false } = {}) {
  if (!isNumber(value)) return DASH;
  if (Math.abs(value) >= 1000) return INTEGER.format(value);
  return (precise || Math.abs(value) < 10 ? PRECISE : NUMBER).format(value);
}

// Units the way Grafana shows them: durations in ms/s/min/h, bytes in KiB/MiB/GiB, rates as "/s", and large
// plain numbers SI-abbreviated (1.2k, 3.4M). `unit` is what the API says ("ms", "s", "bytes", "per_second", "%"…).
const DURATION_SCALES = [[3600000, "h"], [60000, "min"], [1000, "s"], [1, "ms"]];
const BYTE_SCALES = ["B", "KiB", "MiB", "GiB", "TiB"];
const SI_SCALES = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];

export function unitLabel(unit) {
  if (unit === "per_second") return "/s";
  if (unit === "count" || unit === "samples") return "";
  return unit ?? "";
}

// How to show numbers of about `magnitude` in `unit`: divide by `factor`, then append `suffix`.
// `si` is true when the suffix is an SI prefix glued to the number (12.3k req/s).
export function scaleFor(unit, magnitude) {
  const size = Math.abs(isNumber(magnitude) ? magnitude : 0);
  if (unit === "ms" || unit === "s") {
    const inMs = unit === "s" ? size * 1000 : size;
    const base = unit === "s" ? 1000 : 1;
    const [factor, suffix] = DURATION_SCALES.find(([step]) => inMs >= step) ?? DURATION_SCALES[3];
    return { factor: factor / base, suffix, si: false };
  }
  if (unit === "bytes") {
    let index = 0;
    while (size >= 1024 ** (index + 1) && index < BYTE_SCALES.length - 1) index += 1;
    return { factor: 1024 ** index, suffix: BYTE_SCALES[index], si: false };
  }
  if (unit === "%") return { factor: 1, suffix: "%", si: false };
  const [factor, prefix] = SI_SCALES.find(([step]) => size >= step) ?? [1, ""];
  return { factor, suffix: prefix, si: true };
}

function joinUnit(number, scale, unit) {
  const label = unitLabel(unit);
  if (scale.si) {
    const text = `${number}${scale.suffix}`;
    return label ? `${text} ${label}` : text;
  }
  return scale.suffix === "%" ? `${number} %` : `${number} ${scale.suffix}`;
}

export function formatValue(value, unit) {
  if (!isNumber(value)) return DASH;
  const scaled = scaleFor(unit, value);
  // Plain numbers stay whole below 100,000 (12,034 requests reads better than 12k).
  const scale = scaled.si && Math.abs(value) < 1e5 ? { factor: 1, suffix: "", si: true } : scaled;
  return joinUnit(formatNumber(value / scale.factor, { precise: scale.factor !== 1 && Math.abs(value / scale.factor) < 100 }),
    scale, unit);
}

// Axis ticks: one scale for the whole axis (chosen by its largest tick), decimals from the tick spacing.
export function formatTicks(splits, unit) {
  const numbers = splits.filter(isNumber);
  const largest = Math.max(0, ...numbers.map(Math.abs));
  const scale = scaleFor(unit, largest);
  // As few decimals as tell the ticks apart exactly (1.4 h, 2.8 h; 250k; 0.05 %), at most three.
  const scaled = numbers.map((value) => value / scale.factor);
  let decimals = 0;
  while (decimals < 3 && scaled.some((value) => Math.abs(value - Number(value.toFixed(decimals))) > 1e-9 * Math.max(1, Math.abs(value)))) {
    decimals += 1;
  }
  const format = new Intl.NumberFormat("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
  return {
    label: scale.si ? unitLabel(unit) : scale.suffix,
    values: splits.map((value) => (isNumber(value) ? `${format.format(value / scale.factor)}${scale.si ? scale.suffix : ""}` : "")),
  };
}

export function formatBytes(value) {
  return formatValue(value, "bytes");
}

export function formatDuration(seconds) {
  if (!isNumber(seconds)) return DASH;
  const s = Math.max(0, Math.round(seconds));
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (days) return `${days} d ${hours} h`;
  if (hours) return `${hours} h ${minutes} min`;
  if (minutes) return `${minutes} min ${s % 60} s`;
  return `${s} s`;
}

export function formatAge(seconds) {
  if (!isNumber(seconds)) return DASH;
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))}s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

// Times are shown in UTC, like the API, so operators comparing notes see the same clock.
export function formatTime(iso) {
  const date = parseTime(iso);
  return date ? date.toISOString().slice(11, 19) : DASH;
}

export function formatDateTime(iso) {
  const date = parseTime(iso);
  return date ? `${date.toISOString().slice(0, 10)} ${date.toISOString().slice(11, 19)}` : DASH;
}

// Month-day and time, for dense tables whose rows are all from the last 30 days.
export function formatShortDateTime(iso) {
  const date = parseTime(iso);
  return date ? `${date.toISOString().slice(5, 10)} ${date.toISOString().slice(11, 19)}` : DASH;
}

export function parseTime(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function truncate(text, length) {
  const value = text ?? "";
  return value.length > length ? `${value.slice(0, length - 1)}…` : value;
}
