import { PendingDeltas, type DeltaRules } from "./pending";

/** Entries recorded within this window travel to their ledger as one batch: a ledger transaction per isolate per window, whatever the request rate. */
export const BATCH_WINDOW_MS = 100;
/** A failed write is retried this many times, backing off; the batch id keeps retries exact. */
export const WRITE_ATTEMPTS = 6;
const RETRY_BASE_MS = 100;
/** A window still open this long after it should have closed lost its sender (a cancelled request). */
const ABANDONED_WINDOW_MS = 1000;

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
 * caller keeps the isolate alive with waitUntil(record(...)): the first caller of a window
 * until the window's batch is durable, the others not at all (the first one covers them).
 */
export class BatchedLedgerWriter<Entry, Delta extends { requests: number }> {
  private pending: PendingDeltas<Entry, Delta>;
  /** When the open window's batch is sent (null: no window open). */
  private windowClosesAt: number | null = null;
  /** Requests given up on after every retry failed (also logged with their batch). */
  lost = 0;

  constructor(private readonly spec: LedgerWriterSpec<Entry, Delta>) {
    this.pending = new PendingDeltas(spec);
  }

  /**
   * Adds the entry. The first entry of a window sends the window's batch when it closes (its
   * caller's promise covers the write); the others return at once, their entries riding in
   * that batch. No promise is shared between requests (the runtime cancels a continuation that
   * another request's I/O resolves), and a window whose sender never came back is reopened.
   */
  async record(env: Env, ledger: string, entry: Entry): Promise<void> {
    this.pending.add(ledger, entry);
    const now = Date.now();
    if (this.windowClosesAt !== null && now < this.windowClosesAt + ABANDONED_WINDOW_MS) return;
    this.windowClosesAt = now + BATCH_WINDOW_MS;
    await sleep(BATCH_WINDOW_MS);
    this.windowClosesAt = null;
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
