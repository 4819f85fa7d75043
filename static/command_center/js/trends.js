// Reading `trends` responses: one request per metric (and group_by) per refresh, shared by every chart.

import { isNumber } from "./format.js";

export class TrendSource {
  constructor(api) {
    this.api = api;
    this.cache = new Map();
    this.params = {};
  }

  // Start a refresh cycle for a time range; requests made during it are shared. With `compare` (yesterday |
  // last_week) every ungrouped request also brings the same window shifted back (`body.compare`), so a chart
  // and its overlay are one request.
  begin(rangeParams, compare = "") {
    this.params = rangeParams;
    this.compare = compare || "";
    this.cache.clear();
  }

  get(metric, groupBy = null) {
    const compare = groupBy ? "" : this.compare;
    const key = `${metric}|${groupBy ?? ""}|${compare}`;
    if (!this.cache.has(key)) {
      this.cache.set(key, this.api.get("trends", { metric, group_by: groupBy, compare, ...this.params }));
    }
    return this.cache.get(key);
  }
}

export const COMPARE_LABELS = { yesterday: "yesterday", last_week: "last week" };

// The shifted series of an ungrouped response (aligned on body.timestamps), or null without `compare`.
export function compareColumn(body, valueKey) {
  const series = body.compare?.series?.[0];
  return series ? (series.values?.[valueKey] ?? nulls(body.timestamps ?? [])) : null;
}

// The overlay series spec of a chart: drawn dashed and muted on the same axes (charts.js `compare`).
export function compareSpec(label, compare, unit = undefined) {
  return { label: `${label} (${COMPARE_LABELS[compare] ?? compare})`, compare: true, unit };
}

const nulls = (timestamps) => timestamps.map(() => null);

// The values of `valueKey` (p50, p95, rate, value…) of the ungrouped series.
export function column(body, valueKey) {
  return body.series?.[0]?.values?.[valueKey] ?? nulls(body.timestamps ?? []);
}

// Of a grouped response, the series whose label `label` equals `value`.
export function labelled(body, label, value, valueKey) {
  const series = (body.series ?? []).find((entry) => entry.labels?.[label] === value);
  return series?.values?.[valueKey] ?? nulls(body.timestamps ?? []);
}

// Add the series of a grouped response into buckets chosen by `bucketOf(labelValue)` (e.g. 4xx / 5xx).
export function bucketed(body, label, valueKey, buckets, bucketOf) {
  const timestamps = body.timestamps ?? [];
  const sums = Object.fromEntries(buckets.map((bucket) => [bucket, nulls(timestamps)]));
  for (const series of body.series ?? []) {
    const bucket = bucketOf(series.labels?.[label] ?? "");
    if (!(bucket in sums)) continue;
    (series.values?.[valueKey] ?? []).forEach((value, i) => {
      if (isNumber(value)) sums[bucket][i] = (sums[bucket][i] ?? 0) + value;
    });
  }
  return buckets.map((bucket) => sums[bucket]);
}

// numerator / denominator × 100, point by point (null where either side has no data or is zero).
export function percentOf(numerator, denominator) {
  return numerator.map((value, i) => {
    const total = denominator[i];
    if (!isNumber(value) || !isNumber(total) || total === 0) return null;
    return (100 * value) / total;
  });
}
