import { TokenTail, tokenSourceOf, tokensIn, type TokenUsage } from "./tokens";

/**
 * Bodies whose declared length is at most this are taken whole from the node by the runtime
 * (one native read, no JavaScript per chunk) and handed to the client in one piece. Larger
 * or unsized bodies (streams, SSE) are counted chunk by chunk. 64 KiB keeps the extra
 * memory per request small and the added time to first byte under a millisecond on a LAN.
 */
export const WHOLE_BODY_LIMIT = 64 * 1024;

/** How one response body ended, as the client received it: what every ledger counts. */
export interface Metered {
  /** Body bytes handed to the client. */
  bytes: number;
  /** The client went away (or the node broke off) before the body ended. */
  aborted: boolean;
  /** Tokens the node reported in the bytes the client got (OpenAI `usage`), if any. */
  tokens: TokenUsage | null;
}

export interface MeteredBody {
  body: BodyInit | null;
  /** The body is already in hand (or there is none): nothing is left to wait for but `ended`'s continuation. */
  whole: boolean;
  /** Settles once the body has been handed to the client, or the client or node broke off. */
  ended: Promise<Metered>;
}

const EMPTY: Metered = { bytes: 0, aborted: false, tokens: null };

/**
 * The one meter of response bodies: it reads a node's body at most once and tells every
 * ledger (the tenant's usage, the carrier's offload ledger) the same bytes and tokens.
 *
 * - A small body of known length (WHOLE_BODY_LIMIT, no content encoding) is read whole by the
 *   runtime and handed over in one piece: bytes and tokens come from that buffer, with no
 *   JavaScript per chunk, and the count is exact (all or nothing).
 * - Any other body is passed on by a pull-based stream with no buffer of its own, so a chunk
 *   is read from the node only when the client asks and one that arrives after the client
 *   left is neither delivered nor counted: an aborted body counts exactly what its client
 *   took. Only the bytes tokens can be in are kept (the tail of an event stream, a JSON body
 *   up to 1 MiB), and they are decoded once, when the body ends.
 */
export async function meterBody(response: Response, clientGone?: AbortSignal): Promise<MeteredBody> {
  if (response.body === null) return { body: null, whole: true, ended: Promise.resolve(EMPTY) };
  const source = tokenSourceOf(response.headers.get("content-type"));
  if (!takesWholeBodyPath(response.headers)) return { ...meteredStream(response.body, new TokenTail(source), clientGone), whole: false };
  let whole: ArrayBuffer;
  try {
    whole = await response.arrayBuffer();
  } catch (err) {
    // The node broke off mid-body before anything reached the client.
    return { body: new ReadableStream({ start: (controller) => controller.error(err) }), whole: true, ended: Promise.resolve({ bytes: 0, aborted: true, tokens: null }) };
  }
  // Gone while the node's body arrived: nothing is handed over.
  if (clientGone?.aborted === true) return { body: null, whole: true, ended: Promise.resolve({ bytes: 0, aborted: true, tokens: null }) };
  // Parsed once for every ledger, in a continuation rather than on the way to the response.
  const ended = Promise.resolve().then((): Metered => ({ bytes: whole.byteLength, aborted: false, tokens: tokensIn(source, new Uint8Array(whole), true) }));
  return { body: whole, whole: true, ended };
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

/** The counted stream of every body not taken whole (see meterBody). */
export function meteredStream(body: ReadableStream<Uint8Array>, tail: TokenTail, clientGone?: AbortSignal): { body: ReadableStream<Uint8Array>; ended: Promise<Metered> } {
  const reader = body.getReader();
  let bytes = 0;
  let settled = false;
  let settle: (end: Metered) => void = () => {};
  const ended = new Promise<Metered>((resolve) => (settle = resolve));
  const end = (aborted: boolean) => {
    if (settled) return;
    settled = true;
    settle({ bytes, aborted, tokens: tail.tokens(!aborted) });
  };
  // Without this, a disconnect is only noticed when a later write fails, and those chunks count.
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
          // A chunk that arrives after the client left is not streamed to anyone.
          if (settled) return;
          bytes += value.byteLength;
          tail.push(value);
          controller.enqueue(value);
        } catch (err) {
          // The node broke off mid-body: the client got what was counted.
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
