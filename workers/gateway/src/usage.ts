import type { Env } from "./env";
import type { UsageEntry } from "./offload-ledger";

/** Entries written within this window travel to the ledger as one batch. */
const BATCH_WINDOW_MS = 20;
/** A failed ledger write is retried this many times, backing off; entry ids keep retries exact. */
const WRITE_ATTEMPTS = 6;
const RETRY_BASE_MS = 100;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface StreamEnd {
  bytes: number;
  /** The client cancelled the body (went away) before it ended. */
  aborted: boolean;
}

/**
 * Passes a response body through and counts the bytes the client actually took. Pull-based
 * with no buffer of its own: a chunk is read from the node only when the client side asks,
 * so the count is what was handed to the client connection, also when it aborts.
 */
export function countedBody(body: ReadableStream<Uint8Array> | null, clientGone?: AbortSignal): { body: ReadableStream<Uint8Array> | null; ended: Promise<StreamEnd> } {
  if (body === null) return { body: null, ended: Promise.resolve({ bytes: 0, aborted: false }) };
  const reader = body.getReader();
  let bytes = 0;
  let settle: (end: StreamEnd) => void = () => {};
  const ended = new Promise<StreamEnd>((resolve) => (settle = resolve));
  // Without this, a disconnect is only noticed when a later write fails, and those chunks count.
  clientGone?.addEventListener("abort", () => {
    settle({ bytes, aborted: true });
    reader.cancel("client disconnected").catch(() => {});
  });
  const counted = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            controller.close();
            settle({ bytes, aborted: false });
            return;
          }
          // A chunk that arrives after the client left is not streamed to anyone.
          if (clientGone?.aborted) return;
          bytes += value.byteLength;
          controller.enqueue(value);
        } catch (err) {
          // The node broke off mid-body: the client got what was counted.
          controller.error(err);
          settle({ bytes, aborted: true });
        }
      },
      async cancel(reason) {
        settle({ bytes, aborted: true });
        await reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
  return { body: counted, ended };
}

/**
 * Per-isolate writer to the partners' ledgers: entries are batched for a few milliseconds,
 * one RPC per partner and batch, retried with backoff. The caller keeps the isolate alive
 * with waitUntil(record(...)) until its entry is durable.
 */
export class UsageRecorder {
  private queued = new Map<string, UsageEntry[]>();
  private batch: Promise<void> | null = null;
  /** Entries given up on after every retry failed (also logged with their ids). */
  lost = 0;

  record(env: Env, partner: string, entry: UsageEntry): Promise<void> {
    const list = this.queued.get(partner) ?? [];
    list.push(entry);
    this.queued.set(partner, list);
    this.batch ??= sleep(BATCH_WINDOW_MS).then(() => this.flush(env));
    return this.batch;
  }

  private async flush(env: Env): Promise<void> {
    const work = this.queued;
    this.queued = new Map();
    this.batch = null;
    await Promise.all([...work].map(([partner, entries]) => this.write(env, partner, entries)));
  }

  private async write(env: Env, partner: string, entries: UsageEntry[]): Promise<void> {
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      try {
        // A fresh stub per attempt: a stub whose object crashed stays broken.
        await ledger(env, partner).record(entries);
        return;
      } catch (err) {
        console.warn(JSON.stringify({ at: "ledger.write", partner, entries: entries.length, attempt, error: String(err) }));
        await sleep(RETRY_BASE_MS * 2 ** attempt);
      }
    }
    this.lost += entries.length;
    console.error(JSON.stringify({ at: "ledger.lost", partner, ids: entries.map((e) => e.id) }));
  }
}

export function ledger(env: Env, partner: string) {
  return env.OFFLOAD_LEDGER.get(env.OFFLOAD_LEDGER.idFromName(partner));
}
