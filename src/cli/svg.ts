/** A small SVG bar chart of benchmark results: interprocess relative to its counterpart (Node core, or the best npm peer) per metric. */

/** The parts of bench/results/*.json that the chart reads. */
interface BenchResults {
  rows?: Array<{ id: string; metrics?: Record<string, { better?: string; ratios?: { interprocessToCounterpart?: number | null; interprocessToNode?: number | null } }> }>;
}

const escape = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function renderSvg(results: BenchResults): string {
  const bars: Array<{ label: string; value: number }> = [];
  for (const row of results.rows ?? []) {
    for (const [key, metric] of Object.entries(row.metrics ?? {})) {
      const ratio = metric.ratios?.interprocessToCounterpart ?? metric.ratios?.interprocessToNode;
      if (typeof ratio !== 'number' || !Number.isFinite(ratio) || ratio <= 0) continue;
      // Speed-up over Node core, whatever the unit: > 1 means interprocess is better.
      const value = metric.better === 'lower' ? 1 / ratio : ratio;
      bars.push({ label: `${row.id} ${key}`, value });
    }
  }
  const width = 720;
  const rowHeight = 26;
  const left = 300;
  const scale = (width - left - 60) / Math.max(2, ...bars.map((b) => b.value));
  const height = 50 + bars.length * rowHeight;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<text x="10" y="20" font-size="14" font-weight="bold">interprocess relative to Node core or the best npm peer (1.0 = same; higher is better)</text>`,
    `<line x1="${left + scale}" y1="30" x2="${left + scale}" y2="${height - 5}" stroke="#888" stroke-dasharray="4 3"/>`,
  ];
  bars.forEach((bar, i) => {
    const y = 36 + i * rowHeight;
    parts.push(`<text x="${left - 8}" y="${y + 14}" text-anchor="end">${escape(bar.label)}</text>`);
    parts.push(`<rect x="${left}" y="${y}" width="${(bar.value * scale).toFixed(1)}" height="18" fill="${bar.value >= 0.9 ? '#2a7' : '#d54'}"/>`);
    parts.push(`<text x="${left + bar.value * scale + 6}" y="${y + 14}">${bar.value.toFixed(2)}x</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
