import { getRegion } from "@meridian/regions";
import { SELF, env, evictDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { UsageBatch, UsageDelta } from "../src/offload-ledger";
import { ADMIN, BASE, CLIENT_KEY, eventually, fleet, joinNode, TEST_TENANT_ID, type TestNode } from "./helpers";

const LONDON = { ...CLIENT_KEY, "x-client-lat": "51.5074", "x-client-lon": "-0.1278", "x-client-country": "GB" };
const HOUR_MS = 3600_000;

const partner = (id: string, offload: Record<string, unknown> = {}, regions = ["lhr", "man"]) => ({
  name: `Carrier ${id}`,
  regions,
  offload: { maxHotspotKm: 50, minTier: 2, congestionThreshold: 0.7, hysteresis: 0.2, dial: { base: 100, max: 100 }, ...offload },
});

async function carriersVersion(): Promise<string> {
  const res = await SELF.fetch(`${BASE}/admin/carriers`, { headers: ADMIN });
  const tag = res.headers.get("etag");
  if (tag === null) throw new Error("no etag on GET /admin/carriers");
  return tag;
}

async function putPartner(id: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return SELF.fetch(`${BASE}/admin/carriers/${id}`, {
    method: "PUT",
    headers: { ...ADMIN, "content-type": "application/json", "if-match": await carriersVersion(), "x-meridian-reason": "test", ...headers },
    body: JSON.stringify(body),
  });
}

/** Node endpoints answer with `answer`; everything else (the gateway itself) goes through. */
function mockNodes(answer: (url: string) => Promise<Response> | Response): void {
  const real = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    return url.startsWith(BASE) ? real(input, init) : answer(url);
  });
}

/** Test nodes send no pings on their own: keep them alive (the hub marks silent nodes down). */
const keepAlives: ReturnType<typeof setInterval>[] = [];
function keepAlive(...nodes: TestNode[]): void {
  keepAlives.push(setInterval(() => nodes.forEach((n) => n.ws.send("ping")), 400));
}
afterEach(() => keepAlives.splice(0).forEach(clearInterval));

function beat(node: TestNode, seq: number, extra: Record<string, unknown>): void {
  node.ws.send(JSON.stringify({ type: "heartbeat", seq, load: 0, inFlight: 0, free: 8, ...extra }));
}

/**
 * A partner with one backbone node and one tier-3 hotspot in `region` (each test its own
 * region: hotspots serve every partner, and earlier tests' nodes stay connected).
 */
async function partnerIn(region: string, id: string, offload: Record<string, unknown> = {}, hotspotOver: Record<string, unknown> = {}, connect: Record<string, string> = {}) {
  const place = getRegion(region);
  if (place === undefined) throw new Error(`no region ${region}`);
  expect((await putPartner(id, partner(id, offload, [region]))).status).toBe(200);
  const backbone = await joinNode(`${id}-bb`, region, { kind: "carrier", partner: id });
  const hotspot = await joinNode(`${id}-hs`, region, { kind: "hotspot", maxMbps: 300, ...hotspotOver }, connect);
  keepAlive(backbone, hotspot);
  beat(hotspot, 1, { tier: 3, users: 12 });
  beat(backbone, 1, { congestion: 0.1 });
  const headers = { ...CLIENT_KEY, "x-client-lat": String(place.lat), "x-client-lon": String(place.lon), "x-client-country": place.country, "x-meridian-kind": "hotspot", "x-meridian-carrier": id };
  await eventually(async () => {
    const res = await SELF.fetch(`${BASE}/route`, { headers });
    const body = (await res.json()) as { offload?: { dial: { congestion: number } | null; hotspots: { qualifying: number } } };
    expect(body.offload?.dial?.congestion).toBe(0.1);
    expect(body.offload?.hotspots.qualifying).toBe(1);
  });
  return { backbone, hotspot, headers };
}

describe("carrier partners API", () => {
  it("versions, validates and audits partners; writes need admin, If-Match and a reason", async () => {
    const first = await putPartner("tmo-a", partner("tmo-a"));
    expect(first.status).toBe(200);
    const bad = await putPartner("tmo-a", partner("tmo-a", { dial: { base: 80, max: 20 } }));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: "invalid_body" });
    const stale = await SELF.fetch(`${BASE}/admin/carriers/tmo-a`, { method: "PUT", headers: { ...ADMIN, "content-type": "application/json", "if-match": '"v1"', "x-meridian-reason": "x" }, body: JSON.stringify(partner("tmo-a")) });
    expect(stale.status).toBe(412);
    const editor = await putPartner("tmo-b", partner("tmo-b"), { authorization: `Bearer ${env.EDITOR_TOKEN}` });
    expect(editor.status).toBe(403);
    const noReason = await SELF.fetch(`${BASE}/admin/carriers/tmo-b`, { method: "PUT", headers: { ...ADMIN, "content-type": "application/json", "if-match": await carriersVersion() }, body: JSON.stringify(partner("tmo-b")) });
    expect(noReason.status).toBe(400);

    const changed = await putPartner("tmo-a", partner("tmo-a", { minTier: 4 }));
    expect(((await changed.json()) as { summary: string }).summary).toBe("changed tmo-a (offload.minTier)");
    const audit = (await (await SELF.fetch(`${BASE}/admin/carriers/audit`, { headers: ADMIN })).json()) as { entries: { action: string; summary: string; reason: string }[] };
    expect(audit.entries[0]).toMatchObject({ action: "publish", summary: "changed tmo-a (offload.minTier)", reason: "upsert tmo-a: test" });

    const versions = (await (await SELF.fetch(`${BASE}/admin/carriers/versions`, { headers: ADMIN })).json()) as { versions: { version: number }[] };
    const before = versions.versions[1]?.version ?? 0;
    const rolled = await SELF.fetch(`${BASE}/admin/carriers/rollback`, { method: "POST", headers: { ...ADMIN, "content-type": "application/json", "if-match": await carriersVersion(), "x-meridian-reason": "undo" }, body: JSON.stringify({ version: before }) });
    expect(rolled.status).toBe(200);
    const live = (await (await SELF.fetch(`${BASE}/admin/carriers/tmo-a`, { headers: ADMIN })).json()) as { partner: { offload: { minTier: number } } };
    expect(live.partner.offload.minTier).toBe(2);
  });

  it("enrolls backbone nodes only for a known partner", async () => {
    const res = await SELF.fetch(`${BASE}/admin/nodes`, { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify({ id: "nobody-bb", kind: "carrier", region: "lhr", capacity: 8, partner: "nobody" }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unknown_partner");
  });
});

describe("carrier routing", () => {
  afterEach(() => vi.restoreAllMocks());

  it("refuses an unknown partner, a malformed one, and a GPU requirement with 400", async () => {
    const ask = (headers: Record<string, string>) => SELF.fetch(`${BASE}/v1/data`, { headers: { ...LONDON, ...headers } });
    const unknown = await ask({ "x-meridian-carrier": "no-such-carrier" });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("unknown_partner");
    expect((await ask({ "x-meridian-carrier": "Not A Partner!" })).status).toBe(400);
    await putPartner("tmo-gpu", partner("tmo-gpu"));
    await eventually(async () => expect((await ask({ "x-meridian-carrier": "tmo-gpu", "x-meridian-kind": "gpu" })).status).toBe(400));
  });

  it("offloads inside the dial, keeps the backbone outside it, and explains why in /route", async () => {
    const { headers } = await partnerIn("lhr", "tmo-dial", { dial: { base: 100, max: 100 } });
    mockNodes(() => new Response("x".repeat(1000)));
    const offloaded = await SELF.fetch(`${BASE}/v1/data`, { headers });
    expect(offloaded.headers.get("x-meridian-route")).toBe("offload");
    expect(offloaded.headers.get("x-meridian-node")).toBe("tmo-dial-hs");
    expect(offloaded.headers.get("x-meridian-offload-reason")).toBe("dial");
    await offloaded.text();
    vi.restoreAllMocks();

    expect((await putPartner("tmo-dial", partner("tmo-dial", { dial: { base: 0, max: 0 } }))).status).toBe(200);
    await eventually(async () => {
      const body = (await (await SELF.fetch(`${BASE}/route`, { headers })).json()) as { node: { id: string }; offload: { route: string; reason: string; hotspots: { qualifying: number } } };
      expect(body.offload).toMatchObject({ route: "backbone", reason: "outside-dial" });
      expect(body.offload.hotspots.qualifying).toBe(1);
      expect(body.node.id).toBe("tmo-dial-bb");
    });
  });

  it("raises the dial when the backbone reports congestion and lowers it again with hysteresis", async () => {
    const { backbone, headers } = await partnerIn("cdg", "tmo-cong", { dial: { base: 0, max: 100 } });
    const subscriber = { ...headers, "x-meridian-subscriber": "sub-42" };
    const explain = async () => ((await (await SELF.fetch(`${BASE}/route`, { headers: subscriber })).json()) as { offload: { route: string; reason: string; dial: { percent: number; engaged: boolean } } }).offload;
    expect(await explain()).toMatchObject({ route: "backbone", reason: "outside-dial", dial: { percent: 0, engaged: false } });
    beat(backbone, 2, { congestion: 1 });
    await eventually(async () => expect(await explain()).toMatchObject({ route: "offload", reason: "congestion", dial: { percent: 100, engaged: true } }));
    // Inside the band (0.5..0.7): still engaged, the dial follows congestion down.
    beat(backbone, 3, { congestion: 0.6 });
    await eventually(async () => expect((await explain()).dial).toMatchObject({ engaged: true, percent: 20 }));
    beat(backbone, 4, { congestion: 0.3 });
    await eventually(async () => expect(await explain()).toMatchObject({ route: "backbone", dial: { percent: 0, engaged: false } }));
  });

  it("flags a hotspot whose socket arrives far from its region, and ranks it last", async () => {
    const { headers } = await partnerIn("fra", "tmo-geo", {}, {}, { "x-meridian-dev-colo": "SIN" });
    const nodes = (await fleet()) as unknown as { id: string; geoFlag?: { colo: string; km: number } }[];
    expect(nodes.find((n) => n.id === "tmo-geo-hs")?.geoFlag).toMatchObject({ colo: "sin" });
    const honest = await joinNode("tmo-geo-hs2", "fra", { kind: "hotspot", maxMbps: 300 });
    keepAlive(honest);
    beat(honest, 1, { tier: 3, load: 0.9 });
    await eventually(async () => {
      const body = (await (await SELF.fetch(`${BASE}/route`, { headers })).json()) as { node: { id: string } };
      expect(body.node.id).toBe("tmo-geo-hs2");
    });
  });
});

describe("offload ledger", () => {
  afterEach(() => vi.restoreAllMocks());

  const ledgerOf = (id: string) => env.OFFLOAD_LEDGER.getByName(id);
  const usage = async (id: string) => {
    const from = new Date(Date.now() - 2 * HOUR_MS).toISOString();
    const to = new Date(Date.now() + HOUR_MS).toISOString();
    const res = await SELF.fetch(`${BASE}/admin/offload/usage?partner=${id}&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`, { headers: ADMIN });
    expect(res.status).toBe(200);
    return (await res.json()) as { totals: Record<"offload" | "backbone", { requests: number; bytes: number; creditedBytes: number; abortedRequests: number; flaggedRequests: number }>; rows: { node: string; route: string; requests: number }[] };
  };

  it("counts every request and the bytes the client took, aborted streams included, the same in the tenant's ledger", async () => {
    const { headers } = await partnerIn("ams", "tmo-bytes");
    // One meter per body feeds both ledgers: the tenant's usage moves by exactly what the partner's counts.
    const tenantTotals = async () => (await env.TENANT_LEDGER.getByName(TEST_TENANT_ID).usage(Date.now() - 2 * HOUR_MS, Date.now() + HOUR_MS)).totals;
    const tenantBefore = await tenantTotals();
    const chunk = new Uint8Array(4096).fill(7);
    mockNodes((url) => {
      if (url.includes("stream")) {
        // A body that never ends, a chunk every 20 ms: the client will walk away.
        return new Response(new ReadableStream({ pull: async (c) => {
          await new Promise((r) => setTimeout(r, 20));
          c.enqueue(chunk);
        } }));
      }
      // Sized bodies take the whole-body path, unsized ones the counted stream: both count.
      if (url.includes("sized")) return new Response(new Uint8Array(10_000), { headers: { "content-length": "10000" } });
      return new Response(new Uint8Array(10_000));
    });
    for (let i = 0; i < 5; i++) {
      const res = await SELF.fetch(`${BASE}/v1/${i % 2 === 0 ? "sized" : "data"}`, { headers });
      expect(res.status, await res.clone().text()).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBe(10_000);
    }
    const aborted = await SELF.fetch(`${BASE}/v1/stream`, { headers });
    const reader = aborted.body?.getReader();
    if (reader === undefined) throw new Error("no body");
    let received = 0;
    while (received < 2 * chunk.length) {
      const { value } = await reader.read();
      received += value?.byteLength ?? 0;
    }
    await reader.cancel();
    await eventually(async () => {
      const { totals } = await usage("tmo-bytes");
      expect(totals.offload).toMatchObject({ requests: 6, bytes: 50_000 + received, abortedRequests: 1, flaggedRequests: 0 });
      expect(totals.offload.creditedBytes).toBe(totals.offload.bytes);
      const tenantAfter = await tenantTotals();
      expect({ requests: tenantAfter.requests - tenantBefore.requests, bytes: tenantAfter.bytes - tenantBefore.bytes, aborted: tenantAfter.abortedRequests - tenantBefore.abortedRequests }).toEqual({ requests: 6, bytes: 50_000 + received, aborted: 1 });
    });
  });

  it("fails over from a dead hotspot to the backbone and counts only the attempt that served", async () => {
    const { headers } = await partnerIn("mad", "tmo-fail");
    mockNodes((url) => {
      if (url.includes("tmo-fail-hs")) throw new Error("connect ECONNREFUSED");
      return new Response("backbone bytes");
    });
    const res = await SELF.fetch(`${BASE}/v1/data`, { headers });
    expect(res.headers.get("x-meridian-route")).toBe("backbone");
    expect(res.headers.get("x-meridian-offload-reason")).toBe("hotspot-failed");
    await res.text();
    await eventually(async () => {
      const { totals } = await usage("tmo-fail");
      expect(totals.backbone).toMatchObject({ requests: 1, bytes: 14, creditedBytes: 0 });
      expect(totals.offload.requests).toBe(0);
    });
  });

  it("applies a retried write once, keeps counts across a restart of the ledger object, and caps credit at enrolled backhaul", async () => {
    await putPartner("tmo-ledger", partner("tmo-ledger"));
    const hour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
    const delta = (requests: number, bytes: number): UsageDelta => ({ hour, node: "hs-1", region: "lhr", route: "offload", requests, bytes, aborted: 0, flagged: 0, creditCapBytes: 1_000 });
    const first: UsageBatch = { id: "batch-1", deltas: [delta(2, 900)] };
    expect(await ledgerOf("tmo-ledger").record(first)).toEqual({ applied: true });
    await evictDurableObject(ledgerOf("tmo-ledger"));
    // The batch is retried after the restart (as when its answer was lost): it counts once.
    expect(await ledgerOf("tmo-ledger").record(first)).toEqual({ applied: false });
    expect(await ledgerOf("tmo-ledger").record({ id: "batch-2", deltas: [delta(1, 500)] })).toEqual({ applied: true });
    const { totals, rows } = await usage("tmo-ledger");
    expect(totals.offload).toMatchObject({ requests: 3, bytes: 1400, creditedBytes: 1000 });
    expect(rows).toHaveLength(1);
    const csv = await SELF.fetch(`${BASE}/admin/offload/usage?partner=tmo-ledger&from=${new Date(hour).toISOString()}&to=${new Date(hour + HOUR_MS).toISOString()}&format=csv`, { headers: ADMIN });
    expect(csv.headers.get("content-type")).toContain("text/csv");
    expect((await csv.text()).trim().split("\n")).toEqual([
      "hour,node,region,route,requests,bytes,credited_bytes,aborted_requests,flagged_requests",
      `${new Date(hour).toISOString()},hs-1,lhr,offload,3,1400,1000,0,0`,
    ]);
  });

  it("answers usage queries with clear errors", async () => {
    const ask = (query: string) => SELF.fetch(`${BASE}/admin/offload/usage?${query}`, { headers: ADMIN });
    expect((await ask("partner=tmo-x")).status).toBe(400);
    expect((await ask("partner=tmo-x&from=2026-11-25T10:00:00Z&to=2026-11-25T09:00:00Z")).status).toBe(400);
    const unknown = await ask("partner=never-seen&from=2026-11-25T00:00:00Z&to=2026-11-26T00:00:00Z");
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("unknown_partner");
    expect((await SELF.fetch(`${BASE}/admin/offload/usage?partner=tmo-x&from=2026-11-25T00:00:00Z&to=2026-11-26T00:00:00Z`)).status).toBe(401);
  });

  it("summarizes the offload share per partner and region", async () => {
    const { headers } = await partnerIn("dub", "tmo-sum", { dial: { base: 50, max: 50 } });
    mockNodes(() => new Response("0123456789"));
    const routes: string[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await SELF.fetch(`${BASE}/v1/data`, { headers: { ...headers, "x-meridian-subscriber": `s-${i}` } });
      routes.push(res.headers.get("x-meridian-route") ?? "");
      await res.text();
    }
    const offloaded = routes.filter((r) => r === "offload").length;
    await eventually(async () => {
      const summary = (await (await SELF.fetch(`${BASE}/admin/offload/summary`, { headers: ADMIN })).json()) as { partners: { partner: string; offloadShare: number; regions: { region: string; offloadRequests: number; backboneRequests: number }[] }[] };
      const mine = summary.partners.find((p) => p.partner === "tmo-sum");
      expect(mine?.regions).toEqual([expect.objectContaining({ region: "dub", offloadRequests: offloaded, backboneRequests: 40 - offloaded })]);
      expect(mine?.offloadShare).toBeCloseTo(offloaded / 40, 3);
    });
    expect(offloaded).toBeGreaterThan(8);
    expect(offloaded).toBeLessThan(32);
  });
});
