import { addCounts, LedgerObject } from "../ledger/ledger-object";
import type { LedgerBatch } from "../ledger/writer";
import { monthOf } from "./bucket";
import { tenantLimiter } from "./durable";

/** Requests of one key and hour, summed by a gateway isolate before they travel. */
export interface TenantUsageDelta {
  hour: number;
  key: string;
  requests: number;
  bytes: number;
  promptTokens: number;
  completionTokens: number;
  aborted: number;
}

/** One isolate's write: its id makes a retried write count once; `tenant` names the limiter to tell. */
export interface TenantUsageBatch extends LedgerBatch<TenantUsageDelta> {
  tenant: string;
}

export interface TenantUsageRow {
  hour: string;
  key: string;
  requests: number;
  bytes: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  abortedRequests: number;
}

export type TenantUsageTotals = Omit<TenantUsageRow, "hour" | "key">;

/** A row as stored, under the answer's names. */
type StoredRow = Omit<TenantUsageRow, "hour"> & { hour: number };

/**
 * The usage ledger of one tenant (named by its id): requests, response bytes and tokens per
 * hour x key in SQLite, written like the offload ledger: a batch is applied in one transaction
 * with its id, so a retry after a crash or a lost answer is counted exactly once. Budgets are
 * checked against it (the tenant's limiter is told the month's totals after every batch).
 */
export class TenantLedger extends LedgerObject {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS usage (hour INTEGER NOT NULL, key TEXT NOT NULL, requests INTEGER NOT NULL, bytes INTEGER NOT NULL,
      prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, aborted INTEGER NOT NULL, PRIMARY KEY (hour, key))`);
  }

  record(batch: TenantUsageBatch): { applied: boolean } {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    const applied = this.applied.applyOnce(
      batch.id,
      () => {
        for (const d of batch.deltas) {
          sql.exec(
            `INSERT INTO usage (hour, key, requests, bytes, prompt_tokens, completion_tokens, aborted) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (hour, key) DO UPDATE SET requests = requests + excluded.requests, bytes = bytes + excluded.bytes,
               prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, aborted = aborted + excluded.aborted`,
            d.hour, d.key, d.requests, d.bytes, d.promptTokens, d.completionTokens, d.aborted,
          );
        }
      },
      now,
    );
    if (applied) {
      const month = monthOf(now).start;
      const totals = this.monthTotals(month);
      // Best effort: the limiter re-reads the ledger when it has not heard for a few seconds.
      this.ctx.waitUntil(tenantLimiter(this.env, batch.tenant).noteSpent(month, totals.tokens, totals.bytes).catch(() => {}));
    }
    return { applied };
  }

  /** Tokens and bytes of the calendar month starting at `month` (UTC), for budgets. */
  monthTotals(month: number): { tokens: number; bytes: number } {
    const next = monthOf(month).next;
    const row = this.ctx.storage.sql
      .exec<{ t: number | null; b: number | null }>("SELECT SUM(prompt_tokens + completion_tokens) AS t, SUM(bytes) AS b FROM usage WHERE hour >= ? AND hour < ?", month, next)
      .one();
    return { tokens: row.t ?? 0, bytes: row.b ?? 0 };
  }

  /** Rows with hour in [fromMs, toMs), and their totals. */
  usage(fromMs: number, toMs: number): { rows: TenantUsageRow[]; totals: TenantUsageTotals } {
    const rows = this.usageRows<StoredRow>(
      "hour, key, requests, bytes, prompt_tokens AS promptTokens, completion_tokens AS completionTokens, prompt_tokens + completion_tokens AS totalTokens, aborted AS abortedRequests",
      "hour, key",
      fromMs,
      toMs,
    );
    const totals: TenantUsageTotals = { requests: 0, bytes: 0, promptTokens: 0, completionTokens: 0, totalTokens: 0, abortedRequests: 0 };
    for (const r of rows) addCounts(totals, r);
    return { rows, totals };
  }
}
