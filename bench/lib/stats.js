// Small statistics helpers.

export function median(values) {
  return percentile(values, 50);
}

/** The p-th percentile with linear interpolation between ranks (numpy's default). */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}
