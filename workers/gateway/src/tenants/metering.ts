import type { TenantUsageBatch, TenantUsageDelta } from "./ledger";
import { tenantLedger } from "./durable";

const HOUR_MS = 3600_000;
/** A JSON body larger than this is passed through but not parsed for `usage`. */
const MAX_JSON_SNIFF_BYTES = 1024 * 1024;
/** An SSE line longer than this is not a usage chunk (they are a few hundred bytes). */
const MAX_SSE_LINE_BYTES = 64 * 1024;

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/** How one tenant request ended, as the client received it. */
export interface MeteredEnd {
  bytes: number;
  aborted: boolean;
  tokens: TokenUsage | null;
}

/** `usage` of an OpenAI-style completion or final stream chunk, or null when absent or malformed. */
export function usageOf(value: unknown): TokenUsage | null {
  if (typeof value !== "object" || value === null || !("usage" in value)) return null;
  const usage = value.usage;
  if (typeof usage !== "object" || usage === null) return null;
  const prompt = "prompt_tokens" in usage ? usage.prompt_tokens : undefined;
  const completion = "completion_tokens" in usage ? usage.completion_tokens : undefined;
  const count = (n: unknown) => (typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : null);
  const p = count(prompt ?? 0);
  const c = count(completion ?? 0);
  return p === null || c === null ? null : { promptTokens: p, completionTokens: c };
}

/**
 * Reads token usage out of the bytes a client was handed: the whole body of a JSON response,
 * or the `data:` lines of an event stream (the final chunk carries `usage` when the client
 * asked for stream_options.include_usage). Only bytes actually delivered are fed to it, so an
 * aborted stream counts the tokens its client saw reported: none, if the last chunk never came.
 */
export class UsageSniffer {
  private readonly decoder = new TextDecoder();
  private text = "";
  private oversized = false;
  tokens: TokenUsage | null = null;

  constructor(private readonly kind: "json" | "sse" | "none") {}

  static forContentType(contentType: string | null): UsageSniffer {
    const type = (contentType ?? "").toLowerCase();
    return new UsageSniffer(type.includes("text/event-stream") ? "sse" : type.includes("json") ? "json" : "none");
  }

  feed(chunk: Uint8Array): void {
    if (this.kind === "none" || this.oversized) return;
    this.text += this.decoder.decode(chunk, { stream: true });
    if (this.kind === "json") {
      if (this.text.length > MAX_JSON_SNIFF_BYTES) {
        this.oversized = true;
        this.text = "";
      }
      return;
    }
    let newline = this.text.indexOf("\n");
    while (newline >= 0) {
      this.line(this.text.slice(0, newline));
      this.text = this.text.slice(newline + 1);
      newline = this.text.indexOf("\n");
    }
    // A line that never ends is not an event: stop buffering it.
    if (this.text.length > MAX_SSE_LINE_BYTES) this.text = "";
  }

  /** The body ended normally: a JSON body is complete now. */
  finish(): void {
    if (this.kind === "json" && !this.oversized) {
      try {
        this.tokens = usageOf(JSON.parse(this.text)) ?? this.tokens;
      } catch {
        // Not JSON after all: no tokens to count.
      }
    } else if (this.kind === "sse") this.line(this.text);
    this.text = "";
  }

  private line(raw: string): void {
    const line = raw.trimEnd();
    if (!line.startsWith("data:") || !line.includes('"usage"')) return;
    try {
      const usage = usageOf(JSON.parse(line.slice(5)));
      if (usage !== null) this.tokens = usage;
    } catch {
      // Not a JSON event.
    }
  }
}

/**
 * Passes a response body through, counting the bytes the client took and the tokens reported
 * in them. Pull-based with no buffer of its own, like the offload ledger's countedBody: a chunk
 * is read from the node only when the client asks, and one that arrives after the client left
 * is neither delivered nor counted.
 */
export function meteredBody(body: ReadableStream<Uint8Array> | null, contentType: string | null, clientGone?: AbortSignal): { body: ReadableStream<Uint8Array> | null; ended: Promise<MeteredEnd> } {
  if (body === null) return { body: null, ended: Promise.resolve({ bytes: 0, aborted: false, tokens: null }) };
  const reader = body.getReader();
  const sniffer = UsageSniffer.forContentType(contentType);
  let bytes = 0;
  let settled = false;
  let settle: (end: MeteredEnd) => void = () => {};
  const ended = new Promise<MeteredEnd>((resolve) => (settle = resolve));
  const end = (aborted: boolean) => {
    if (settled) return;
    settled = true;
    if (!aborted) sniffer.finish();
    settle({ bytes, aborted, tokens: sniffer.tokens });
  };
  clientGone?.addEventListener("abort", () => {
    end(true);
    reader.cancel("client disconnected").catch(() => {});
  });
  const metered = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            controller.close();
            end(false);
            return;
          }
          if (clientGone?.aborted || settled) return;
          bytes += value.byteLength;
          sniffer.feed(value);
          controller.enqueue(value);
        } catch (err) {
          controller.error(err);
          end(true);
        }
      },
      async cancel(reason) {
        end(true);
        await reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
  return { body: metered, ended };
}

const BATCH_WINDOW_MS = 20;
const WRITE_ATTEMPTS = 6;
const RETRY_BASE_MS = 100;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Per-isolate writer to the tenants' ledgers: requests are summed per (hour, key) for a few
 * milliseconds and sent as one batch per tenant, retried with backoff under the same batch id
 * (a retry never counts twice, a crash of the ledger loses nothing). The caller keeps the
 * isolate alive with waitUntil(record(...)) until the entry is durable.
 */
export class TenantUsageRecorder {
  private queued = new Map<string, Map<string, TenantUsageDelta>>();
  private batch: Promise<void> | null = null;
  /** Requests given up on after every retry failed (also logged). */
  lost = 0;

  record(env: Env, tenant: string, key: string, startedAt: number, end: MeteredEnd): Promise<void> {
    let deltas = this.queued.get(tenant);
    if (deltas === undefined) this.queued.set(tenant, (deltas = new Map()));
    const hour = Math.floor(startedAt / HOUR_MS) * HOUR_MS;
    const id = `${hour}|${key}`;
    const delta = deltas.get(id) ?? { hour, key, requests: 0, bytes: 0, promptTokens: 0, completionTokens: 0, aborted: 0 };
    delta.requests++;
    delta.bytes += end.bytes;
    delta.promptTokens += end.tokens?.promptTokens ?? 0;
    delta.completionTokens += end.tokens?.completionTokens ?? 0;
    if (end.aborted) delta.aborted++;
    deltas.set(id, delta);
    this.batch ??= sleep(BATCH_WINDOW_MS).then(() => this.flush(env));
    return this.batch;
  }

  private async flush(env: Env): Promise<void> {
    const work = this.queued;
    this.queued = new Map();
    this.batch = null;
    await Promise.all([...work].map(([tenant, deltas]) => this.write(env, { id: crypto.randomUUID(), tenant, deltas: [...deltas.values()] })));
  }

  private async write(env: Env, batch: TenantUsageBatch): Promise<void> {
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      try {
        // A fresh stub per attempt: a stub whose object crashed stays broken.
        await tenantLedger(env, batch.tenant).record(batch);
        return;
      } catch (err) {
        console.warn(JSON.stringify({ at: "tenant-ledger.write", tenant: batch.tenant, batch: batch.id, attempt, error: String(err) }));
        await sleep(RETRY_BASE_MS * 2 ** attempt);
      }
    }
    const requests = batch.deltas.reduce((n, d) => n + d.requests, 0);
    this.lost += requests;
    console.error(JSON.stringify({ at: "tenant-ledger.lost", tenant: batch.tenant, requests, batch }));
  }
}
