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

export function formatValue(value, unit) {
  if (!isNumber(value)) return DASH;
  if (unit === "ms") return `${formatNumber(value)} ms`;
  if (unit === "%") return `${formatNumber(value)} %`;
  if (unit === "bytes") return formatBytes(value);
  return unit ? `${formatNumber(value)} ${unit}` : formatNumber(value);
}

function formatBytes(value) {
  if (!isNumber(value)) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let index = 0;
  let scaled = value;
  while (Math.abs(scaled) >= 1024 && index < units.length - 1) {
    scaled /= 1024;
    index += 1;
  }
  return `${NUMBER.format(scaled)} ${units[index]}`;
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
