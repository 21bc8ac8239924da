import os from "node:os";

export interface Summary {
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
  n: number;
}

/** Percentile `p` (0..100) of ascending `sortedValues`, linear interpolation between ranks. NaN when empty. */
export function percentile(sortedValues: ArrayLike<number>, p: number): number {
  const n = sortedValues.length;
  if (n === 0) return Number.NaN;
  if (n === 1) return sortedValues[0] as number;
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(n - 1, lo + 1);
  const a = sortedValues[lo] as number;
  const b = sortedValues[hi] as number;
  return a + (b - a) * (rank - lo);
}

/** p50 / p99 / mean / min / max of unsorted samples (the input is not modified). */
export function summarize(samples: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(samples as ArrayLike<number>).sort();
  const n = sorted.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i] as number;
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: n === 0 ? Number.NaN : sum / n,
    min: n === 0 ? Number.NaN : (sorted[0] as number),
    max: n === 0 ? Number.NaN : (sorted[n - 1] as number),
    n,
  };
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

function cell(value: string | number | undefined): string {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  return value.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : 2);
}

/** Prints rows as an aligned plain-text table; numbers right-aligned, text left-aligned. */
export function printTable(title: string, rows: Record<string, string | number>[]): void {
  const columns: string[] = [];
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  const text = rows.map((row) => columns.map((c) => cell(row[c])));
  const numeric = columns.map((c) => rows.every((row) => row[c] === undefined || typeof row[c] === "number"));
  const widths = columns.map((c, j) => Math.max(c.length, ...text.map((r) => (r[j] ?? "").length)));
  const line = (cells: string[]) => cells.map((s, j) => (numeric[j] ? s.padStart(widths[j] ?? 0) : s.padEnd(widths[j] ?? 0))).join("  ").trimEnd();
  console.log(`\n${title}`);
  console.log(line(columns));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of text) console.log(line(r));
}
