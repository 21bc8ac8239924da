/**
 * Token usage as a node reports it in a response body (pure: bytes in, counts out). A JSON
 * completion carries `usage` in its body; an event stream carries it in its final `data:`
 * chunk when the client asked for stream_options.include_usage, so only the tail of a stream
 * is ever looked at.
 */

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/** How a body's tokens are found: the whole JSON body, the tail of an event stream, or not at all. */
export type TokenSource = "json" | "sse" | "none";

/** A JSON body larger than this is passed through but not parsed for `usage`. */
export const MAX_JSON_SNIFF_BYTES = 1024 * 1024;
/**
 * How much of an event stream's end is kept to find `usage` in: the usage chunk is a few
 * hundred bytes and comes last (before `data: [DONE]`); a longer line is not a usage chunk.
 */
export const SSE_TAIL_BYTES = 64 * 1024;

export function tokenSourceOf(contentType: string | null): TokenSource {
  const type = (contentType ?? "").toLowerCase();
  return type.includes("text/event-stream") ? "sse" : type.includes("json") ? "json" : "none";
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
 * The tokens reported in the bytes a client was handed. `complete` is false when the body
 * broke off: a JSON body is then not a document, and the last line of a stream not an event.
 * `truncated` says the bytes are a stream's tail only, whose first line may be a fragment.
 */
const decoder = new TextDecoder();

export function tokensIn(source: TokenSource, bytes: Uint8Array, complete: boolean, truncated = false): TokenUsage | null {
  if (source === "none" || bytes.byteLength === 0) return null;
  const text = decoder.decode(bytes);
  // Cheap refusal first: most bodies (every chunk of a stream but the last) carry no usage.
  if (!text.includes('"usage"')) return null;
  if (source === "json") {
    if (!complete || bytes.byteLength > MAX_JSON_SNIFF_BYTES) return null;
    try {
      return usageOf(JSON.parse(text));
    } catch {
      return null; // Not JSON after all: no tokens to count.
    }
  }
  const lines = text.split("\n");
  if (truncated) lines.shift();
  if (!complete) lines.pop();
  // The last usage chunk wins, as a client reading the stream would take it.
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = (lines[i] ?? "").trimEnd();
    if (!line.startsWith("data:") || !line.includes('"usage"')) continue;
    try {
      const usage = usageOf(JSON.parse(line.slice(5)));
      if (usage !== null) return usage;
    } catch {
      // Not a JSON event.
    }
  }
  return null;
}

/**
 * The bytes of a body that tokens may be found in, kept while it streams: all of a JSON body
 * up to MAX_JSON_SNIFF_BYTES, the last SSE_TAIL_BYTES (and at most one chunk more) of an event
 * stream, nothing otherwise. Chunks are kept as they are, never decoded on the way.
 */
export class TokenTail {
  private chunks: Uint8Array[] = [];
  private kept = 0;
  private dropped = false;

  constructor(readonly source: TokenSource) {}

  /** Bytes held now (bounded: see the class comment). */
  get keptBytes(): number {
    return this.kept;
  }

  push(chunk: Uint8Array): void {
    if (this.source === "none" || chunk.byteLength === 0 || (this.source === "json" && this.dropped)) return;
    this.chunks.push(chunk);
    this.kept += chunk.byteLength;
    if (this.source === "json") {
      // Too large to parse: remember that it was (so it is never parsed) and keep nothing.
      if (this.kept > MAX_JSON_SNIFF_BYTES) {
        this.chunks = [];
        this.kept = 0;
        this.dropped = true;
      }
      return;
    }
    let first = this.chunks[0];
    while (first !== undefined && this.chunks.length > 1 && this.kept - first.byteLength >= SSE_TAIL_BYTES) {
      this.chunks.shift();
      this.kept -= first.byteLength;
      this.dropped = true;
      first = this.chunks[0];
    }
  }

  /** The tokens in what was kept; `complete` as for tokensIn. */
  tokens(complete: boolean): TokenUsage | null {
    if (this.source === "json" && this.dropped) return null;
    const bytes = this.chunks.length === 1 ? (this.chunks[0] ?? new Uint8Array()) : concat(this.chunks, this.kept);
    return tokensIn(this.source, bytes, complete, this.dropped);
  }
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
