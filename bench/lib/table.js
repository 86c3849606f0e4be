// Plain-text table output.

/** Formats a measured value with about three significant digits. */
export function formatValue(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '-';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function formatRatio(ratio) {
  return ratio === null || ratio === undefined || !Number.isFinite(ratio) ? '-' : ratio.toFixed(2);
}

/**
 * Renders rows (arrays of strings) under `columns` ({ title, align: 'left'|'right' }), each
 * column as wide as its widest cell.
 */
export function renderTable(columns, rows) {
  const widths = columns.map((column, i) => Math.max(column.title.length, ...rows.map((row) => String(row[i] ?? '').length)));
  const cell = (text, i) => (columns[i].align === 'right' ? String(text).padStart(widths[i]) : String(text).padEnd(widths[i]));
  const line = (cells) => cells.map(cell).join('  ').trimEnd();
  return [line(columns.map((column) => column.title)), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}
