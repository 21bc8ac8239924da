import { DurableObject } from "cloudflare:workers";
import { AppliedBatches } from "./applied";

/**
 * What every ledger Durable Object shares (the tenants' usage, the carriers' offload): the
 * applied-batch ids that make a retried write count once, and the crash hook tests and chaos
 * use. Each ledger keeps its own rows, tables and API.
 */
export abstract class LedgerObject extends DurableObject<Env> {
  protected readonly applied: AppliedBatches;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.applied = new AppliedBatches(ctx.storage);
  }

  /**
   * The rows of this ledger's `usage` table whose hour is in [fromMs, toMs), as `columns`
   * selects and names them (the answer's own names), with their hours as ISO text.
   */
  protected usageRows<Row extends { hour: number } & Record<string, SqlStorageValue>>(columns: string, orderBy: string, fromMs: number, toMs: number): (Omit<Row, "hour"> & { hour: string })[] {
    return this.ctx.storage.sql
      .exec<Row>(`SELECT ${columns} FROM usage WHERE hour >= ? AND hour < ? ORDER BY ${orderBy}`, fromMs, toMs)
      .toArray()
      .map((r) => ({ ...r, hour: new Date(r.hour).toISOString() }));
  }

  /** Test and chaos hook: drops this instance as a crash would; storage stays. */
  crash(): void {
    this.ctx.abort("crash requested");
  }
}

/** Adds every count of `from` to `into` (a ledger's totals from its rows). */
export function addCounts<K extends string>(into: Record<K, number>, from: Record<NoInfer<K>, number>): void {
  for (const key in into) into[key] += from[key];
}
