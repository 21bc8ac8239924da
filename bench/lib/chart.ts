/**
 * The gateway part's figures as a self-contained SVG (no scripts, no external fonts or
 * services), so BENCHMARKS.md can show them as a chart beside the table.
 */

const TARGETS: { key: string; label: string }[] = [
  { key: "direct", label: "node directly" },
  { key: "haproxy", label: "HAProxy" },
  { key: "bare_workerd", label: "bare workerd" },
  { key: "gateway", label: "Meridian gateway" },
  { key: "peer_portkey", label: "Portkey (Node)" },
];

interface Panel {
  title: string;
  /** Result key suffix of the bar's value, and of its range when there is one. */
  value: string;
  min?: string;
  max?: string;
}

const PANELS: Panel[] = [
  { title: "req/s, closed loop (median, range over rounds)", value: "_rps", min: "_rps_min", max: "_rps_max" },
  { title: "CPU µs per request of the serving process", value: "_cpu_us_per_request" },
  { title: "open-loop p99 µs (median over rounds)", value: "_latency_us_p99" },
];

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const num = (v: number) => Math.round(v).toLocaleString("en-US");

export function gatewayChartSvg(results: Readonly<Record<string, number>>, date: string): string {
  const present = TARGETS.filter((t) => Number.isFinite(results[`${t.key}_rps`]));
  const labelWidth = 150;
  const barWidth = 330;
  const panelWidth = labelWidth + barWidth + 70;
  const rowHeight = 22;
  const top = 46;
  const panelHeight = present.length * rowHeight + 30;
  const width = panelWidth * PANELS.length + 20;
  const height = top + panelHeight + 20;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  parts.push(`<text x="10" y="20" font-size="14" font-weight="bold">POST /v1/chat/completions to the same node, ${escape(date)} (pnpm bench, gateway part)</text>`);
  PANELS.forEach((panel, p) => {
    const x0 = 10 + p * panelWidth;
    const values = present.map((t) => results[`${t.key}${panel.value}`] ?? Number.NaN);
    const maxima = present.map((t, i) => (panel.max ? (results[`${t.key}${panel.max}`] ?? values[i] ?? 0) : (values[i] ?? 0)));
    const scale = Math.max(1, ...maxima.filter(Number.isFinite));
    parts.push(`<text x="${x0}" y="${top - 8}" font-weight="bold">${escape(panel.title)}</text>`);
    present.forEach((t, i) => {
      const y = top + i * rowHeight;
      const v = values[i] ?? Number.NaN;
      const ours = t.key === "gateway";
      parts.push(`<text x="${x0 + labelWidth - 6}" y="${y + 14}" text-anchor="end"${ours ? ' font-weight="bold"' : ""}>${escape(t.label)}</text>`);
      if (!Number.isFinite(v)) return;
      const w = (v / scale) * barWidth;
      parts.push(`<rect x="${x0 + labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 8}" fill="${ours ? "#e8710a" : "#7f8c9a"}"/>`);
      const lo = panel.min ? results[`${t.key}${panel.min}`] : undefined;
      const hi = panel.max ? results[`${t.key}${panel.max}`] : undefined;
      if (lo !== undefined && hi !== undefined && Number.isFinite(lo) && Number.isFinite(hi)) {
        const xl = x0 + labelWidth + (lo / scale) * barWidth;
        const xh = x0 + labelWidth + (hi / scale) * barWidth;
        const ym = y + rowHeight / 2 - 1;
        parts.push(`<path d="M${xl.toFixed(1)} ${ym}H${xh.toFixed(1)}M${xl.toFixed(1)} ${ym - 4}V${ym + 4}M${xh.toFixed(1)} ${ym - 4}V${ym + 4}" stroke="#000" stroke-width="1"/>`);
      }
      const end = Math.max(w, hi !== undefined && Number.isFinite(hi) ? (hi / scale) * barWidth : 0);
      parts.push(`<text x="${(x0 + labelWidth + end + 4).toFixed(1)}" y="${y + 14}">${num(v)}</text>`);
    });
  });
  parts.push(`<text x="10" y="${height - 8}" fill="#555">Servers on core 0, load generators on core 1; medians of interleaved rounds. Shorter is better for CPU and p99.</text>`);
  parts.push("</svg>\n");
  return parts.join("\n");
}
