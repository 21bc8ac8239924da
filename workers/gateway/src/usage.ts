import type { UsageBatch, UsageDelta, UsageEntry } from "./offload-ledger";
import { offloadLedger } from "./durable";

/** Entries written within this window travel to the ledger as one batch. */
const BATCH_WINDOW_MS = 20;
/** A failed ledger write is retried this many times, backing off; entry ids keep retries exact. */
const WRITE_ATTEMPTS = 6;
const RETRY_BASE_MS = 100;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const HOUR_MS = 3600_000;

/** Bytes one hotspot with this enrolled backhaul can move in an hour: the most it is credited. */
export function hourlyCreditCap(maxMbps: number): number {
  return Math.floor((maxMbps * 1_000_000 * 3600) / 8);
}

/** One served carrier request, as the gateway knows it when the response body has ended. */
export interface ServedRequest {
  startedAt: number;
  node: string;
  region: string;
  route: UsageEntry["route"];
  end: StreamEnd;
  flagged: boolean;
  /** The hotspot's enrolled backhaul when offloaded (its credit cap), else null. */
  creditMbps: number | null;
}

/** The ledger entry of a served request: its hour, and the credit cap of an offload. */
export function usageEntry(served: ServedRequest): UsageEntry {
  return {
    hour: Math.floor(served.startedAt / HOUR_MS) * HOUR_MS,
    node: served.node,
    region: served.region,
    route: served.route,
    bytes: served.end.bytes,
    aborted: served.end.aborted,
    flagged: served.flagged,
    creditCapBytes: served.creditMbps === null ? null : hourlyCreditCap(served.creditMbps),
  };
}

export interface StreamEnd {
  bytes: number;
  /** The client cancelled the body (went away) before it ended. */
  aborted: boolean;
}

/**
 * Bodies whose declared length is at most this are taken whole from the node by the runtime
 * (one native read, no JavaScript per chunk) and handed to the client in one piece. Larger
 * or unsized bodies (streams, SSE) are counted chunk by chunk. 64 KiB keeps the extra
 * memory per request small and the added time to first byte under a millisecond on a LAN.
 */
export const WHOLE_BODY_LIMIT = 64 * 1024;

export interface CountedBody {
  body: BodyInit | null;
  /** Settles once the body has been handed to the client, or the client or node broke off. */
  ended: Promise<StreamEnd>;
}

/**
 * Passes a node's response body through and counts the bytes the client actually took.
 * Small bodies of known length take the whole-body path: the runtime reads them natively and
 * the client gets them in a single write, so the count is exact (all or nothing) without a
 * JavaScript hop per chunk. This is about 50 µs of CPU per request over the plain pass-through
 * against about 300 µs for the counted stream (BENCHMARKS.md, "Ledger counting").
 */
export async function countedBody(response: Response, clientGone?: AbortSignal): Promise<CountedBody> {
  if (response.body === null) return { body: null, ended: Promise.resolve({ bytes: 0, aborted: false }) };
  if (!takesWholeBodyPath(response.headers)) return countedStream(response.body, clientGone);
  let whole: ArrayBuffer;
  try {
    whole = await response.arrayBuffer();
  } catch (err) {
    // The node broke off mid-body before anything reached the client.
    return { body: new ReadableStream({ start: (controller) => controller.error(err) }), ended: Promise.resolve({ bytes: 0, aborted: true }) };
  }
  // Gone while the node's body arrived: nothing is handed over.
  if (clientGone?.aborted === true) return { body: null, ended: Promise.resolve({ bytes: 0, aborted: true }) };
  return { body: whole, ended: Promise.resolve({ bytes: whole.byteLength, aborted: false }) };
}

/**
 * A declared length within WHOLE_BODY_LIMIT and no content encoding (the runtime decodes
 * encoded bodies, so their declared length is not what the client would get).
 */
function takesWholeBodyPath(headers: Headers): boolean {
  const declared = headers.get("content-length");
  if (declared === null || !/^\d{1,9}$/.test(declared) || Number(declared) > WHOLE_BODY_LIMIT) return false;
  const encoding = headers.get("content-encoding");
  return encoding === null || encoding.trim().toLowerCase() === "identity";
}

/**
 * The counted stream: pull-based with no buffer of its own, so a chunk is read from the node
 * only when the client side asks, and the count is what was handed to the client connection,
 * also when it aborts.
 */
export function countedStream(body: ReadableStream<Uint8Array>, clientGone?: AbortSignal): { body: ReadableStream<Uint8Array>; ended: Promise<StreamEnd> } {
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
 * Per-isolate writer to the partners' ledgers: entries are summed per key for a few
 * milliseconds and sent as one batch per partner, retried with backoff under the same batch
 * id (so a retry never counts twice). The caller keeps the isolate alive with
 * waitUntil(record(...)) until its entry is durable.
 */
export class UsageRecorder {
  private queued = new Map<string, Map<string, UsageDelta>>();
  private batch: Promise<void> | null = null;
  /** Requests given up on after every retry failed (also logged with the batch). */
  lost = 0;

  record(env: Env, partner: string, entry: UsageEntry): Promise<void> {
    let deltas = this.queued.get(partner);
    if (deltas === undefined) this.queued.set(partner, (deltas = new Map()));
    const key = `${entry.hour}|${entry.node}|${entry.region}|${entry.route}`;
    const delta = deltas.get(key) ?? { hour: entry.hour, node: entry.node, region: entry.region, route: entry.route, requests: 0, bytes: 0, aborted: 0, flagged: 0, creditCapBytes: entry.creditCapBytes };
    delta.requests++;
    delta.bytes += entry.bytes;
    if (entry.aborted) delta.aborted++;
    if (entry.flagged) delta.flagged++;
    deltas.set(key, delta);
    this.batch ??= sleep(BATCH_WINDOW_MS).then(() => this.flush(env));
    return this.batch;
  }

  private async flush(env: Env): Promise<void> {
    const work = this.queued;
    this.queued = new Map();
    this.batch = null;
    await Promise.all([...work].map(([partner, deltas]) => this.write(env, partner, { id: crypto.randomUUID(), deltas: [...deltas.values()] })));
  }

  private async write(env: Env, partner: string, batch: UsageBatch): Promise<void> {
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      try {
        // A fresh stub per attempt: a stub whose object crashed stays broken.
        await offloadLedger(env, partner).record(batch);
        return;
      } catch (err) {
        console.warn(JSON.stringify({ at: "ledger.write", partner, batch: batch.id, attempt, error: String(err) }));
        await sleep(RETRY_BASE_MS * 2 ** attempt);
      }
    }
    const requests = batch.deltas.reduce((n, d) => n + d.requests, 0);
    this.lost += requests;
    console.error(JSON.stringify({ at: "ledger.lost", partner, requests, batch }));
  }
}

