import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN, BASE } from "./helpers";

const post = (body: unknown, headers: Record<string, string> = ADMIN) =>
  SELF.fetch(`${BASE}/admin/nodes`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });

describe("admin API", () => {
  it("answers healthz without auth", async () => {
    const res = await SELF.fetch(`${BASE}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok" });
  });

  it("refuses a missing or wrong admin token with 401 and the error shape", async () => {
    const missing = await SELF.fetch(`${BASE}/admin/fleet`);
    expect(missing.status).toBe(401);
    const requestId = missing.headers.get("x-request-id");
    expect(requestId).toMatch(/^[\w-]{8,}$/);
    expect(await missing.json()).toEqual({ error: { code: "unauthorized", message: expect.any(String), requestId } });
    const wrong = await SELF.fetch(`${BASE}/admin/fleet`, { headers: { authorization: "Bearer not-the-token-at-all" } });
    expect(wrong.status).toBe(401);
  });

  it("enrolls a node and returns a credential bound to its identity", async () => {
    const res = await post({ id: "nrt-h100-1", kind: "gpu", region: "nrt", gpu: { class: "h100", vramGb: 80, count: 8 }, capacity: 16 });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { credential: string; node: unknown; expiresAt: string };
    // A JWT: header, claims and signature.
    expect(body.credential).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(body.node).toEqual({ id: "nrt-h100-1", kind: "gpu", region: "nrt", gpu: { class: "h100", vramGb: 80, count: 8 }, capacity: 16 });
    expect(Date.parse(body.expiresAt)).toBeGreaterThan(Date.now() + 80 * 86_400_000);
  });

  it("rejects bad enrollments with 400 and every issue", async () => {
    const res = await post({ id: "X", kind: "gpu", region: "atlantis", capacity: 0 });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; issues: { path: string }[] } };
    expect(body.error.code).toBe("invalid_body");
    expect(body.error.issues.map((i) => i.path).sort()).toEqual(["capacity", "gpu", "id", "region"]);
    const gpuless = await post({ id: "fra-x", kind: "gpu", region: "fra", capacity: 4 });
    expect(((await gpuless.json()) as { error: { message: string } }).error.message).toMatch(/gpu/);
    const unknownClass = await post({ id: "fra-y", kind: "gpu", region: "fra", capacity: 4, gpu: { class: "tpu9", vramGb: 8, count: 1 } });
    expect(unknownClass.status).toBe(400);
  });

  it("answers malformed JSON with 400 invalid_json and oversized bodies with 413", async () => {
    const bad = await post("{not json");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("invalid_json");
    const huge = await post({ id: "fra-z", kind: "hotspot", region: "fra", capacity: 4, pad: "x".repeat(100_000) });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: { code: string } }).error.code).toBe("body_too_large");
  });

  it("answers unknown paths with 404 in the error shape", async () => {
    const res = await SELF.fetch(`${BASE}/nope`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });
});

describe("admin edge: what goes to the audit log, and bodies too large", () => {
  it("refuses control characters, bidi overrides and lone surrogates in reasons and actors with 400, and stores nothing", async () => {
    const live = await SELF.fetch(`${BASE}/admin/policy`, { headers: ADMIN });
    const etag = live.headers.get("etag") ?? "";
    const document = ((await live.json()) as { document: unknown }).document;
    const versionsBefore = ((await (await SELF.fetch(`${BASE}/admin/policy/versions`, { headers: ADMIN })).json()) as { versions: unknown[] }).versions.length;
    let checked = 0;
    for (const [header, value] of [
      ["x-meridian-reason", "ok\u001b[2Jcleared"],
      ["x-meridian-reason", "bell\u0007"],
      ["x-meridian-reason", "nul\u0000"],
      ["x-meridian-reason", "right-to-left \u202eoverride"],
      ["x-meridian-reason", "isolate \u2066x\u2069"],
      ["x-meridian-actor", "eve\u202e"],
    ] as const) {
      // fetch may refuse some raw control bytes itself (then nothing reached the gateway);
      // whatever does arrive must be refused.
      let res: Response;
      try {
        res = await SELF.fetch(`${BASE}/admin/policy`, { method: "PUT", headers: { ...ADMIN, "content-type": "application/json", "if-match": etag, "x-meridian-reason": "fine", [header]: value }, body: JSON.stringify(document) });
      } catch {
        continue; // the client library refused to send it at all: nothing reached the gateway
      }
      expect(res.status, JSON.stringify(value)).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unsafe_text");
      checked++;
    }
    console.log(`[admin] ${checked} unsafe header values reached the gateway and were refused`);
    expect(checked).toBeGreaterThanOrEqual(3);
    const versionsAfter = ((await (await SELF.fetch(`${BASE}/admin/policy/versions`, { headers: ADMIN })).json()) as { versions: unknown[] }).versions.length;
    expect(versionsAfter).toBe(versionsBefore);
  });

  it("answers an oversize chunked body (no content-length) with 413 in the error shape", async () => {
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 40) return controller.close();
        sent++;
        controller.enqueue(chunk);
      },
    });
    const res = await SELF.fetch(`${BASE}/admin/nodes`, { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: "body_too_large", requestId: expect.any(String) } });
  });
});
