import { PendingDeltas, type DeltaRules } from "./pending";

/** Entries recorded within this window travel to their ledger as one batch. */
export const BATCH_WINDOW_MS = 20;
/** A failed write is retried this many times, backing off; the batch id keeps retries exact. */
export const WRITE_ATTEMPTS = 6;
const RETRY_BASE_MS = 100;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What travels to a ledger in one write: its id makes a retried write count once. */
export interface LedgerBatch<Delta> {
  id: string;
  deltas: Delta[];
}

export interface LedgerWriterSpec<Entry, Delta extends { requests: number }> extends DeltaRules<Entry, Delta> {
  /** Names the log lines: `${name}.write` for a failed attempt, `${name}.lost` for a given-up batch. */
  name: string;
  /** One write of a batch to the named ledger (a Durable Object call). */
  write(env: Env, ledger: string, batch: LedgerBatch<Delta>): Promise<unknown>;
}

/**
 * The per-isolate writer of a family of ledgers (one ledger per tenant, one per carrier
 * partner): entries are summed per row for BATCH_WINDOW_MS and sent as one batch per ledger,
 * retried with backoff under the same batch id, so a retry never counts twice and a crash of
 * the ledger object loses nothing. The ledger applies each id once (AppliedBatches). The
 * caller keeps the isolate alive with waitUntil(record(...)) until the batch its window sent
 * is durable (an entry another request's window took is kept alive by that request).
 */
export class BatchedLedgerWriter<Entry, Delta extends { requests: number }> {
  private pending: PendingDeltas<Entry, Delta>;
  /** Requests given up on after every retry failed (also logged with their batch). */
  lost = 0;

  constructor(private readonly spec: LedgerWriterSpec<Entry, Delta>) {
    this.pending = new PendingDeltas(spec);
  }

  /**
   * Adds the entry; after the window, sends whatever is pending then (this entry and every
   * other recorded meanwhile), unless another request's window sent it first. Each caller
   * waits on its own timer: no promise is shared between requests, because the runtime
   * cancels a continuation that another request's I/O resolves.
   */
  async record(env: Env, ledger: string, entry: Entry): Promise<void> {
    this.pending.add(ledger, entry);
    await sleep(BATCH_WINDOW_MS);
    const work = this.pending.take();
    await Promise.all(work.map(([ledger, deltas]) => this.write(env, ledger, { id: crypto.randomUUID(), deltas })));
  }

  private async write(env: Env, ledger: string, batch: LedgerBatch<Delta>): Promise<void> {
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      try {
        // The spec takes a fresh stub per attempt: a stub whose object crashed stays broken.
        await this.spec.write(env, ledger, batch);
        return;
      } catch (err) {
        console.warn(JSON.stringify({ at: `${this.spec.name}.write`, ledger, batch: batch.id, attempt, error: String(err) }));
        await sleep(RETRY_BASE_MS * 2 ** attempt);
      }
    }
    const requests = batch.deltas.reduce((n, d) => n + d.requests, 0);
    this.lost += requests;
    console.error(JSON.stringify({ at: `${this.spec.name}.lost`, ledger, requests, batch }));
  }
}
