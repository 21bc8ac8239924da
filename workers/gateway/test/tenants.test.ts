import { SELF, env } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ADMIN, BASE, CLIENT_KEY, eventually, joinNode, routeBody } from "./helpers";

const VIEWER = { authorization: `Bearer ${env.VIEWER_TOKEN}` };
const WRITE = { ...ADMIN, "content-type": "application/json", "x-meridian-reason": "tenant tests" };
const SINGAPORE = { "x-client-lat": "1.3521", "x-client-lon": "103.8198", "x-client-country": "SG" };
const PARIS = { "x-client-lat": "48.8566", "x-client-lon": "2.3522", "x-client-country": "FR" };

interface ErrorBody {
  error: { code: string; message: string; requestId: string; rule?: string; policyVersion?: number; tenant?: { id: string; hqCountry: string } };
}

async function createTenant(body: Record<string, unknown>): Promise<string> {
  const res = await SELF.fetch(`${BASE}/admin/tenants`, { method: "POST", headers: WRITE, body: JSON.stringify({ limits: { requestsPerMinute: 1000, concurrentRequests: 100 }, ...body }) });
  if (res.status !== 201) throw new Error(`create tenant ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

async function newKey(tenant: string): Promise<{ id: string; key: string; auth: { authorization: string } }> {
  const res = await SELF.fetch(`${BASE}/admin/tenants/${tenant}/keys`, { method: "POST", headers: WRITE, body: "{}" });
  if (res.status !== 201) throw new Error(`create key ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { id: string; key: string };
  return { ...body, auth: { authorization: `Bearer ${body.key}` } };
}

/** A node answer like an OpenAI-compatible server's, for the mocked outbound fetch. */
function answerAsNode(respond: (url: string) => Response) {
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => respond(input instanceof Request ? input.url : String(input)));
}

afterEach(() => vi.restoreAllMocks());

describe("tenant admin API", () => {
  it("creates, reads, edits and deletes tenants with validation, roles and an audit trail", async () => {
    const noReason = await SELF.fetch(`${BASE}/admin/tenants`, { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify({ id: "acme", name: "Acme", hqCountry: "DE", limits: { requestsPerMinute: 60, concurrentRequests: 4 } }) });
    expect(noReason.status).toBe(400);
    expect(((await noReason.json()) as ErrorBody).error.code).toBe("reason_required");
    const invalid = await SELF.fetch(`${BASE}/admin/tenants`, { method: "POST", headers: WRITE, body: JSON.stringify({ id: "acme", name: "Acme", hqCountry: "Germany", limits: { requestsPerMinute: 0, concurrentRequests: 4 } }) });
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as ErrorBody).error.code).toBe("invalid_body");
    const viewerWrite = await SELF.fetch(`${BASE}/admin/tenants`, { method: "POST", headers: { ...VIEWER, "content-type": "application/json", "x-meridian-reason": "x" }, body: "{}" });
    expect(viewerWrite.status).toBe(403);

    const created = await SELF.fetch(`${BASE}/admin/tenants`, { method: "POST", headers: WRITE, body: JSON.stringify({ id: "acme", name: "Acme", hqCountry: "DE", residency: "eu", limits: { requestsPerMinute: 60, concurrentRequests: 4 } }) });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ id: "acme", hqCountry: "DE", residency: "eu", limits: { requestsPerMinute: 60, concurrentRequests: 4 } });
    const again = await SELF.fetch(`${BASE}/admin/tenants`, { method: "POST", headers: WRITE, body: JSON.stringify({ id: "acme", name: "Acme", hqCountry: "DE", limits: { requestsPerMinute: 60, concurrentRequests: 4 } }) });
    expect(again.status).toBe(409);

    const list = (await (await SELF.fetch(`${BASE}/admin/tenants`, { headers: VIEWER })).json()) as { tenants: { id: string }[] };
    expect(list.tenants.map((t) => t.id)).toContain("acme");
    const patched = await SELF.fetch(`${BASE}/admin/tenants/acme`, { method: "PATCH", headers: { ...WRITE, "x-meridian-reason": "acquired by a Singapore group" }, body: JSON.stringify({ parentHqCountry: "SG", residency: null, limits: { requestsPerMinute: 120 } }) });
    expect(patched.status).toBe(200);
    const tenant = (await patched.json()) as Record<string, unknown>;
    expect(tenant).toMatchObject({ parentHqCountry: "SG", limits: { requestsPerMinute: 120, concurrentRequests: 4 } });
    expect(tenant.residency).toBeUndefined();

    const deleted = await SELF.fetch(`${BASE}/admin/tenants/acme`, { method: "DELETE", headers: WRITE });
    expect(deleted.status).toBe(200);
    expect((await SELF.fetch(`${BASE}/admin/tenants/acme`, { headers: VIEWER })).status).toBe(404);
    const audit = (await (await SELF.fetch(`${BASE}/admin/tenants/audit`, { headers: VIEWER })).json()) as { entries: { action: string; tenant: string; actor: string; reason: string; detail: string; at: string }[] };
    const acme = audit.entries.filter((e) => e.tenant === "acme").map((e) => e.action);
    expect(acme).toEqual(["delete", "update", "create"]);
    expect(audit.entries.find((e) => e.tenant === "acme" && e.action === "update")).toMatchObject({ actor: "admin", reason: "acquired by a Singapore group", detail: expect.stringContaining('parentHqCountry null -> "SG"') });
  });

  it("shows a key once, lists it by prefix only, and records when it was last used", async () => {
    const tenant = await createTenant({ id: "keys-co", name: "Keys Co", hqCountry: "US" });
    const key = await newKey(tenant);
    expect(key.key).toMatch(/^mk_[A-Za-z0-9_-]{40}$/);
    const listed = (await (await SELF.fetch(`${BASE}/admin/tenants/${tenant}/keys`, { headers: VIEWER })).json()) as { keys: Record<string, unknown>[] };
    expect(listed.keys).toHaveLength(1);
    expect(listed.keys[0]).toMatchObject({ id: key.id, prefix: `${key.key.slice(0, 11)}…`, lastUsedAt: null, revokedAt: null });
    expect(JSON.stringify(listed)).not.toContain(key.key);
    await joinNode("ams-keys", "ams", { kind: "hotspot", gpu: undefined });
    await eventually(async () => expect((await SELF.fetch(`${BASE}/route`, { headers: { ...key.auth, ...PARIS, "x-meridian-kind": "hotspot" } })).status).toBe(200));
    await eventually(async () => {
      const keys = (await (await SELF.fetch(`${BASE}/admin/tenants/${tenant}/keys`, { headers: VIEWER })).json()) as { keys: { lastUsedAt: string | null }[] };
      expect(keys.keys[0]?.lastUsedAt).not.toBeNull();
    });
  }, 30_000);
});

describe("client authentication", () => {
  beforeAll(async () => {
    await joinNode("sin-auth-hotspot", "sin", { kind: "hotspot", gpu: undefined });
    await eventually(async () => expect((await routeBody({ ...CLIENT_KEY, ...SINGAPORE, "x-meridian-kind": "hotspot" })).node).toMatchObject({ id: "sin-auth-hotspot" }));
  });

  it("answers 401 in the error shape for a missing, malformed or unknown key, and refuses a key in the URL", async () => {
    for (const [headers, code] of [
      [{}, "missing_api_key"],
      [{ authorization: "Basic dXNlcjpwYXNz" }, "invalid_api_key"],
      [{ authorization: "Bearer mk_unknown0000000000000000000000000000000000" }, "invalid_api_key"],
    ] as const) {
      for (const path of ["/v1/whoami", "/route"]) {
        const res = await SELF.fetch(`${BASE}${path}`, { headers: { ...SINGAPORE, ...headers } });
        expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.headers.get("www-authenticate")).toContain("Bearer");
        const body = (await res.json()) as ErrorBody;
        expect(body.error.code).toBe(code);
        expect(body.error.requestId).toBeTruthy();
      }
    }
    const inQuery = await SELF.fetch(`${BASE}/v1/whoami?api_key=${CLIENT_KEY.authorization.slice(7)}`, { headers: { ...CLIENT_KEY, ...SINGAPORE } });
    expect(inQuery.status).toBe(400);
    expect(((await inQuery.json()) as ErrorBody).error.code).toBe("key_in_query");
  });

  it("refuses a revoked key within a second", async () => {
    const tenant = await createTenant({ id: "revoked-co", name: "Revoked Co", hqCountry: "SG" });
    const key = await newKey(tenant);
    answerAsNode(() => Response.json({ ok: true }));
    expect((await SELF.fetch(`${BASE}/v1/whoami`, { headers: { ...key.auth, ...SINGAPORE, "x-meridian-kind": "hotspot" } })).status).toBe(200);
    const revoked = await SELF.fetch(`${BASE}/admin/tenants/${tenant}/keys/${key.id}`, { method: "DELETE", headers: WRITE });
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toMatchObject({ id: key.id, revokedAt: expect.any(String) });
    const start = Date.now();
    let status = 200;
    while (status !== 401 && Date.now() - start < 10_000) status = (await SELF.fetch(`${BASE}/v1/whoami`, { headers: { ...key.auth, ...SINGAPORE, "x-meridian-kind": "hotspot" } })).status;
    const ms = Date.now() - start;
    console.log(`[tenants] revoked key refused after ${ms} ms`);
    expect(status).toBe(401);
    // The bound is ~10x the 1 s promise: CI is a busy machine. The e2e test checks the second.
    expect(ms).toBeLessThan(10_000);
  });
});

describe("headquarters and residency in the policy", () => {
  beforeAll(async () => {
    await joinNode("sin-hq-h100", "sin");
    await joinNode("fra-res-hotspot", "fra", { kind: "hotspot", gpu: undefined });
    await joinNode("lhr-res-hotspot", "lhr", { kind: "hotspot", gpu: undefined });
    await eventually(async () => expect((await routeBody({ ...CLIENT_KEY, ...SINGAPORE, "x-meridian-gpu": "h100" })).node).toMatchObject({ id: "sin-hq-h100" }));
    // Every node joined here is in this isolate's snapshot before a test asks for it.
    const london = { "x-client-lat": "51.5074", "x-client-lon": "-0.1278", "x-client-country": "GB", "x-meridian-kind": "hotspot" };
    await eventually(async () => expect((await routeBody({ ...CLIENT_KEY, ...london })).node).toMatchObject({ id: "lhr-res-hotspot" }));
  });

  it("refuses an H100 to a Singapore client of a CN-headquartered tenant (451 naming the rule and policy version) and serves a Singapore-headquartered one", async () => {
    const cn = await newKey(await createTenant({ id: "cn-hq", name: "CN HQ", hqCountry: "CN" }));
    const sg = await newKey(await createTenant({ id: "sg-hq", name: "SG HQ", hqCountry: "SG" }));
    const subsidiary = await newKey(await createTenant({ id: "sg-sub-of-cn", name: "SG subsidiary", hqCountry: "SG", parentHqCountry: "CN" }));
    answerAsNode(() => Response.json({ ok: true }));
    const refused = await SELF.fetch(`${BASE}/v1/chat/completions`, { method: "POST", headers: { ...cn.auth, ...SINGAPORE, "x-meridian-gpu": "h100" }, body: "{}" });
    expect(refused.status).toBe(451);
    const body = (await refused.json()) as ErrorBody;
    expect(body.error).toMatchObject({ code: "blocked_by_policy", rule: "advanced-gpu-d5-hq", policyVersion: expect.any(Number), tenant: { id: "cn-hq", hqCountry: "CN" } });
    expect(body.error.message).toContain("headquartered");
    const viaParent = await SELF.fetch(`${BASE}/v1/chat/completions`, { method: "POST", headers: { ...subsidiary.auth, ...SINGAPORE, "x-meridian-gpu": "h100" }, body: "{}" });
    expect(viaParent.status).toBe(451);
    expect(((await viaParent.json()) as ErrorBody).error.rule).toBe("advanced-gpu-d5-hq");
    const served = await SELF.fetch(`${BASE}/v1/chat/completions`, { method: "POST", headers: { ...sg.auth, ...SINGAPORE, "x-meridian-gpu": "h100" }, body: "{}" });
    expect(served.status).toBe(200);
    expect(served.headers.get("x-meridian-node")).toBe("sin-hq-h100");
    // /route shows the tenant and explains the refusal.
    const explained = (await (await SELF.fetch(`${BASE}/route`, { headers: { ...cn.auth, ...SINGAPORE, "x-meridian-gpu": "h100" } })).json()) as ErrorBody & { tenant: unknown; excluded: { id: string; rules?: string[] }[] };
    expect(explained.tenant).toEqual({ id: "cn-hq", name: "CN HQ", hqCountry: "CN" });
    expect(explained.error.rule).toBe("advanced-gpu-d5-hq");
    expect(explained.excluded).toContainEqual(expect.objectContaining({ id: "sin-hq-h100", rules: ["advanced-gpu-d5-hq"] }));
  });

  it("keeps an eu tenant in the EU/EEA for every request: a request may narrow, never widen", async () => {
    const eu = await newKey(await createTenant({ id: "eu-only", name: "EU only", hqCountry: "FR", residency: "eu" }));
    const london = { "x-client-lat": "51.5074", "x-client-lon": "-0.1278", "x-client-country": "GB", "x-meridian-kind": "hotspot" };
    // Without the tenant, a London client goes to London; the eu tenant's is kept in the EU.
    expect((await routeBody({ ...CLIENT_KEY, ...london })).node).toMatchObject({ id: "lhr-res-hotspot" });
    const eea = ["fra-res-hotspot", "ams-keys"];
    const body = (await routeBody({ ...eu.auth, ...london })) as { node: { id: string }; tenant: { residency: string }; excluded: { id: string; rules?: string[] }[] };
    expect(eea).toContain(body.node.id);
    expect(body.excluded).toContainEqual(expect.objectContaining({ id: "lhr-res-hotspot", rules: ["residency-eu"] }));
    expect(body.tenant.residency).toBe("eu");
    // Asking for no residency (or another tag) cannot take it out of the EU.
    const other = (await routeBody({ ...eu.auth, ...london, "x-meridian-residency": "eu" })) as { node: { id: string } };
    expect(eea).toContain(other.node.id);
  });
});

describe("limits that hold across isolates", () => {
  beforeAll(async () => {
    await joinNode("syd-limits", "syd", { kind: "hotspot", gpu: undefined });
    await eventually(async () => expect((await routeBody({ ...CLIENT_KEY, "x-client-lat": "-33.87", "x-client-lon": "151.21", "x-client-country": "AU", "x-meridian-kind": "hotspot" })).node).toMatchObject({ id: "syd-limits" }));
  });
  const SYDNEY = { "x-client-lat": "-33.87", "x-client-lon": "151.21", "x-client-country": "AU", "x-meridian-kind": "hotspot" };

  it("answers 429 with Retry-After and x-ratelimit-* past requests per minute", async () => {
    const key = await newKey(await createTenant({ id: "rpm-3", name: "Three a minute", hqCountry: "AU", limits: { requestsPerMinute: 3, concurrentRequests: 10 } }));
    answerAsNode(() => new Response("ok"));
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 5; i++) {
      last = await SELF.fetch(`${BASE}/v1/data?bytes=2`, { headers: { ...key.auth, ...SYDNEY } });
      statuses.push(last.status);
      if (i === 0) expect(last.headers.get("x-ratelimit-remaining")).toBe("2");
      if (last.status === 200) await last.text();
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(last?.headers.get("x-ratelimit-limit")).toBe("3");
    expect(last?.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(Number(last?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(last?.headers.get("retry-after"))).toBeLessThanOrEqual(20);
    expect(Number(last?.headers.get("x-ratelimit-reset"))).toBeGreaterThan(0);
    expect(((await last?.json()) as ErrorBody).error.code).toBe("rate_limited");
  });

  it("holds a concurrency slot until the response body ends", async () => {
    const key = await newKey(await createTenant({ id: "one-at-a-time", name: "One at a time", hqCountry: "AU", limits: { requestsPerMinute: 100, concurrentRequests: 1 } }));
    let finish: () => void = () => {};
    const slow = new ReadableStream<Uint8Array>({ start: (controller) => { controller.enqueue(new TextEncoder().encode("first")); finish = () => controller.close(); } });
    answerAsNode(() => new Response(slow));
    const first = await SELF.fetch(`${BASE}/v1/data?bytes=10`, { headers: { ...key.auth, ...SYDNEY } });
    expect(first.status).toBe(200);
    const second = await SELF.fetch(`${BASE}/v1/data?bytes=10`, { headers: { ...key.auth, ...SYDNEY } });
    expect(second.status).toBe(429);
    expect(((await second.json()) as ErrorBody).error.code).toBe("concurrency_limited");
    expect(second.headers.get("retry-after")).toBe("1");
    finish();
    await first.text();
    vi.restoreAllMocks();
    answerAsNode(() => new Response("ok"));
    await eventually(async () => expect((await SELF.fetch(`${BASE}/v1/data?bytes=2`, { headers: { ...key.auth, ...SYDNEY } })).status).toBe(200));
  });

  it("counts exact usage (bytes and the node's reported tokens) and refuses a spent monthly budget with 429 budget_exhausted", async () => {
    const tenant = await createTenant({ id: "budget-co", name: "Budget Co", hqCountry: "AU", limits: { requestsPerMinute: 100, concurrentRequests: 10, monthlyTokens: 25 } });
    const key = await newKey(tenant);
    const completion = JSON.stringify({ id: "c1", object: "chat.completion", choices: [], usage: { prompt_tokens: 3, completion_tokens: 7, total_tokens: 10 } });
    const stream = `data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":4,"total_tokens":6}}\n\ndata: [DONE]\n\n`;
    answerAsNode((url) => (url.includes("stream") ? new Response(stream, { headers: { "content-type": "text/event-stream" } }) : new Response(completion, { headers: { "content-type": "application/json" } })));
    let bytes = 0;
    for (const path of ["/v1/chat", "/v1/chat", "/v1/chat?stream"]) {
      const res = await SELF.fetch(`${BASE}${path}`, { method: "POST", headers: { ...key.auth, ...SYDNEY }, body: "{}" });
      expect(res.status).toBe(200);
      bytes += (await res.arrayBuffer()).byteLength;
    }
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 3600_000).toISOString();
    const usage = await eventually(async () => {
      const res = await SELF.fetch(`${BASE}/admin/tenants/${tenant}/usage?from=${from}&to=${to}`, { headers: VIEWER });
      const body = (await res.json()) as { totals: Record<string, number>; rows: { key: string }[] };
      expect(body.totals.requests).toBe(3);
      return body;
    });
    expect(usage.totals).toEqual({ requests: 3, bytes, promptTokens: 8, completionTokens: 18, totalTokens: 26, abortedRequests: 0 });
    expect(usage.rows.map((r) => r.key)).toEqual([key.id]);
    const csv = await (await SELF.fetch(`${BASE}/admin/tenants/${tenant}/usage?from=${from}&to=${to}&format=csv`, { headers: VIEWER })).text();
    expect(csv.split("\n")[0]).toBe("hour,key,requests,bytes,prompt_tokens,completion_tokens,total_tokens,aborted_requests");
    expect(csv).toContain(`,${key.id},3,${bytes},8,18,26,0`);
    // 26 tokens of a 25-token month: the next request is refused until the month turns.
    const spent = await eventually(async () => {
      const res = await SELF.fetch(`${BASE}/v1/chat`, { method: "POST", headers: { ...key.auth, ...SYDNEY }, body: "{}" });
      expect(res.status).toBe(429);
      return res;
    });
    expect(((await spent.json()) as ErrorBody).error.code).toBe("budget_exhausted");
    expect(Number(spent.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("shows per-tenant requests, refusals and tokens on /metrics", async () => {
    const text = await (await SELF.fetch(`${BASE}/metrics`, { headers: VIEWER })).text();
    expect(text).toMatch(/meridian_tenant_requests_total\{tenant="rpm-3",outcome="served"\} 3/);
    expect(text).toMatch(/meridian_tenant_requests_total\{tenant="rpm-3",outcome="rate_limited"\} 2/);
    expect(text).toMatch(/meridian_tenant_tokens_total\{tenant="budget-co",type="completion"\} 18/);
  });
});
