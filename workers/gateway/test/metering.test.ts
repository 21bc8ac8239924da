import { describe, expect, it } from "vitest";
import { meterBody, WHOLE_BODY_LIMIT } from "../src/ledger/meter";
import { PendingDeltas } from "../src/ledger/pending";
import { SSE_TAIL_BYTES, TokenTail, tokensIn } from "../src/ledger/tokens";

const encode = (text: string) => new TextEncoder().encode(text);
const usageChunk = (prompt: number, completion: number) => `data: {"choices":[],"usage":{"prompt_tokens":${prompt},"completion_tokens":${completion}}}\n\n`;

/** A body the test feeds chunk by chunk, the way a node streams it. */
function nodeStream(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[i++];
      if (chunk === undefined) controller.close();
      else controller.enqueue(chunk);
    },
  });
}

async function drain(body: BodyInit | null): Promise<number> {
  return (await new Response(body).arrayBuffer()).byteLength;
}

describe("tokensIn / TokenTail", () => {
  it("finds usage in a JSON body only when the body is complete", () => {
    const json = encode(JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 7 } }));
    expect(tokensIn("json", json, true)).toEqual({ promptTokens: 3, completionTokens: 7 });
    expect(tokensIn("json", json, false)).toBeNull();
    expect(tokensIn("none", json, true)).toBeNull();
    expect(tokensIn("json", encode('{"usage": "nonsense"}'), true)).toBeNull();
    expect(tokensIn("json", encode('{"usage": {"prompt_tokens": -1}}'), true)).toBeNull();
  });

  it("takes the last usage chunk of a stream, and no half line of an aborted one", () => {
    const stream = `data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n${usageChunk(2, 4)}data: [DONE]\n\n`;
    expect(tokensIn("sse", encode(stream), true)).toEqual({ promptTokens: 2, completionTokens: 4 });
    // The usage line without its newline: complete at the end of a body, a fragment when it broke off.
    const cut = usageChunk(5, 6).trimEnd();
    expect(tokensIn("sse", encode(cut), true)).toEqual({ promptTokens: 5, completionTokens: 6 });
    expect(tokensIn("sse", encode(cut), false)).toBeNull();
  });

  it("keeps a bounded tail of a long stream and still finds the usage at its end", () => {
    const tail = new TokenTail("sse");
    const filler = encode(`data: {"choices":[{"delta":{"content":"${"x".repeat(1000)}"}}]}\n\n`);
    for (let i = 0; i < 500; i++) tail.push(filler);
    tail.push(encode(usageChunk(11, 500)));
    tail.push(encode("data: [DONE]\n\n"));
    expect(tail.tokens(true)).toEqual({ promptTokens: 11, completionTokens: 500 });
    // What is kept is the tail, not the 500 KB stream (the tail plus at most one chunk).
    const kept = tail.keptBytes;
    console.log(`[metering] kept ${kept} of ${500 * filler.byteLength} bytes`);
    expect(kept).toBeLessThan(SSE_TAIL_BYTES + filler.byteLength * 2);
  });

  it("gives up on a JSON body over the sniff limit instead of buffering it", () => {
    const tail = new TokenTail("json");
    tail.push(encode('{"usage":{"prompt_tokens":1,"completion_tokens":1},"pad":"'));
    for (let i = 0; i < 20; i++) tail.push(new Uint8Array(64 * 1024).fill(0x61));
    tail.push(encode('"}'));
    expect(tail.tokens(true)).toBeNull();
  });
});

describe("meterBody", () => {
  it("takes a small body of known length whole: exact bytes and tokens, a buffer for the client", async () => {
    const text = JSON.stringify({ usage: { prompt_tokens: 3, completion_tokens: 7 } });
    const res = new Response(nodeStream([encode(text)]), { headers: { "content-type": "application/json", "content-length": String(encode(text).byteLength) } });
    const metered = await meterBody(res);
    expect(metered.body).toBeInstanceOf(ArrayBuffer);
    expect(await drain(metered.body)).toBe(encode(text).byteLength);
    expect(await metered.ended).toEqual({ bytes: encode(text).byteLength, aborted: false, tokens: { promptTokens: 3, completionTokens: 7 } });
  });

  it("streams a body over the limit or of unknown length, counting every byte", async () => {
    const chunks = Array.from({ length: 5 }, () => new Uint8Array(WHOLE_BODY_LIMIT / 2));
    const sized = await meterBody(new Response(nodeStream(chunks), { headers: { "content-length": String((5 * WHOLE_BODY_LIMIT) / 2) } }));
    expect(sized.body).toBeInstanceOf(ReadableStream);
    expect(await drain(sized.body)).toBe((5 * WHOLE_BODY_LIMIT) / 2);
    expect(await sized.ended).toEqual({ bytes: (5 * WHOLE_BODY_LIMIT) / 2, aborted: false, tokens: null });

    const sse = await meterBody(new Response(nodeStream([encode('data: {"choices":[]}\n\n'), encode(usageChunk(2, 4)), encode("data: [DONE]\n\n")]), { headers: { "content-type": "text/event-stream" } }));
    const total = await drain(sse.body);
    expect(await sse.ended).toEqual({ bytes: total, aborted: false, tokens: { promptTokens: 2, completionTokens: 4 } });
  });

  it("counts exactly what a client took when it goes away mid-stream, and no chunk after", async () => {
    const gone = new AbortController();
    const chunk = encode(`data: {"choices":[{"delta":{"content":"${"y".repeat(100)}"}}]}\n\n`);
    const metered = await meterBody(new Response(nodeStream([chunk, chunk, chunk, encode(usageChunk(1, 3))]), { headers: { "content-type": "text/event-stream" } }), gone.signal);
    if (!(metered.body instanceof ReadableStream)) throw new Error("expected a stream");
    const reader = metered.body.getReader();
    let received = 0;
    for (let i = 0; i < 2; i++) received += (await reader.read()).value?.byteLength ?? 0;
    gone.abort();
    await reader.read().catch(() => undefined);
    expect(await metered.ended).toEqual({ bytes: received, aborted: true, tokens: null });
    expect(received).toBe(2 * chunk.byteLength);
  });

  it("counts a cancelled body as aborted with the bytes read so far", async () => {
    const chunk = new Uint8Array(1000);
    const metered = await meterBody(new Response(nodeStream([chunk, chunk, chunk])));
    if (!(metered.body instanceof ReadableStream)) throw new Error("expected a stream");
    const reader = metered.body.getReader();
    await reader.read();
    await reader.cancel();
    expect(await metered.ended).toEqual({ bytes: 1000, aborted: true, tokens: null });
  });

  it("hands nothing over and counts nothing when the client left while a whole body was read", async () => {
    const gone = new AbortController();
    gone.abort();
    const metered = await meterBody(new Response("hello", { headers: { "content-length": "5" } }), gone.signal);
    expect(metered.body).toBeNull();
    expect(await metered.ended).toEqual({ bytes: 0, aborted: true, tokens: null });
  });
});

describe("PendingDeltas", () => {
  it("sums entries per ledger and row, and starts afresh after take()", () => {
    const book = new PendingDeltas<{ key: string; bytes: number }, { key: string; requests: number; bytes: number }>({
      keyOf: (e) => e.key,
      empty: (e) => ({ key: e.key, requests: 0, bytes: 0 }),
      add: (d, e) => {
        d.requests++;
        d.bytes += e.bytes;
      },
    });
    book.add("a", { key: "k1", bytes: 10 });
    book.add("a", { key: "k1", bytes: 5 });
    book.add("a", { key: "k2", bytes: 1 });
    book.add("b", { key: "k1", bytes: 7 });
    expect(book.take()).toEqual([
      ["a", [{ key: "k1", requests: 2, bytes: 15 }, { key: "k2", requests: 1, bytes: 1 }]],
      ["b", [{ key: "k1", requests: 1, bytes: 7 }]],
    ]);
    expect(book.size).toBe(0);
    expect(book.take()).toEqual([]);
  });
});
