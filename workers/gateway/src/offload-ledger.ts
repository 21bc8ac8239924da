import { addCounts, LedgerObject } from "./ledger/ledger-object";
import type { LedgerBatch } from "./ledger/writer";

/** One served carrier request, as the gateway reports it once its response body has ended. */
export interface UsageEntry {
  /** Start of the hour the request began in, ms since the epoch. */
  hour: number;
  node: string;
  /** The subscriber's region (nearest catalog region), or the node's when unknown. */
  region: string;
  route: "offload" | "backbone";
  /** Response body bytes handed to the client. */
  bytes: number;
  /** The client went away before the body ended. */
  aborted: boolean;
  /** The hotspot connected from far outside its enrolled region. */
  flagged: boolean;
  /** Offload only: the most this hotspot may be credited in one hour (enrolled backhaul). */
  creditCapBytes: number | null;
}

/** Entries of one key, summed by the gateway before they travel. */
export interface UsageDelta {
  hour: number;
  node: string;
  region: string;
  route: "offload" | "backbone";
  requests: number;
  bytes: number;
  aborted: number;
  flagged: number;
  creditCapBytes: number | null;
}

/** What one gateway isolate sends in one write: its id makes a retried write count once. */
export type UsageBatch = LedgerBatch<UsageDelta>;

export interface UsageRow {
  hour: string;
  node: string;
  region: string;
  route: "offload" | "backbone";
  requests: number;
  bytes: number;
  /** Bytes the hotspot is paid for: offloaded bytes up to its hourly cap; 0 for backbone rows. */
  creditedBytes: number;
  abortedRequests: number;
  flaggedRequests: number;
}

export interface UsageTotals {
  requests: number;
  bytes: number;
  creditedBytes: number;
  abortedRequests: number;
  flaggedRequests: number;
}

/** A row as stored, under the answer's names. */
type StoredRow = Omit<UsageRow, "hour"> & { hour: number };

/**
 * The usage ledger of one carrier partner: requests and bytes per hour x node x region x
 * route in SQLite. A batch is applied in one transaction together with its id, so a batch
 * retried after a crash or a lost answer is counted exactly once.
 */
export class OffloadLedger extends LedgerObject {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS usage (
      hour INTEGER NOT NULL, node TEXT NOT NULL, region TEXT NOT NULL, route TEXT NOT NULL,
      requests INTEGER NOT NULL, bytes INTEGER NOT NULL, credited_bytes INTEGER NOT NULL,
      aborted INTEGER NOT NULL, flagged INTEGER NOT NULL,
      PRIMARY KEY (hour, node, region, route))`);
  }

  /** Applies a batch unless its id was applied before; true when it was new. */
  record(batch: UsageBatch): { applied: boolean } {
    const sql = this.ctx.storage.sql;
    const applied = this.applied.applyOnce(batch.id, () => {
      for (const d of batch.deltas) {
        const credited = d.route === "offload" ? this.creditable(d) : 0;
        sql.exec(
          `INSERT INTO usage (hour, node, region, route, requests, bytes, credited_bytes, aborted, flagged) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (hour, node, region, route) DO UPDATE SET requests = requests + excluded.requests, bytes = bytes + excluded.bytes,
             credited_bytes = credited_bytes + excluded.credited_bytes, aborted = aborted + excluded.aborted, flagged = flagged + excluded.flagged`,
          d.hour, d.node, d.region, d.route, d.requests, d.bytes, credited, d.aborted, d.flagged,
        );
      }
    });
    return { applied };
  }

  /** Rows with hour in [fromHour, toHour), ordered for settlement, plus totals per route. */
  usage(fromMs: number, toMs: number): { rows: UsageRow[]; totals: Record<"offload" | "backbone", UsageTotals> } {
    const rows = this.usageRows<StoredRow>(
      "hour, node, region, route, requests, bytes, credited_bytes AS creditedBytes, aborted AS abortedRequests, flagged AS flaggedRequests",
      "hour, node, region, route",
      fromMs,
      toMs,
    );
    const empty = (): UsageTotals => ({ requests: 0, bytes: 0, creditedBytes: 0, abortedRequests: 0, flaggedRequests: 0 });
    const totals = { offload: empty(), backbone: empty() };
    for (const r of rows) addCounts(totals[r.route], r);
    return { rows, totals };
  }

  /** How much of these bytes the hotspot may still be credited in their hour. */
  private creditable(e: UsageDelta): number {
    if (e.creditCapBytes === null) return e.bytes;
    const row = this.ctx.storage.sql
      .exec<{ c: number | null }>("SELECT SUM(credited_bytes) AS c FROM usage WHERE hour = ? AND node = ? AND route = 'offload'", e.hour, e.node)
      .toArray()[0];
    return Math.max(0, Math.min(e.bytes, e.creditCapBytes - (row?.c ?? 0)));
  }
}
