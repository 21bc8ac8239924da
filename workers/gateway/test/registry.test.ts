import { CloseCode } from "@meridian/protocol";
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN, BASE, connectNode, enroll, eventually, fleet, hello, openNode, type TestNode } from "./helpers";

const H100 = { class: "h100", vramGb: 80, count: 8 };
const json = { "content-type": "application/json" };

async function adminPost(path: string, body: unknown, headers: Record<string, string> = {}) {
  return SELF.fetch(`${BASE}${path}`, { method: "POST", headers: { ...ADMIN, ...json, ...headers }, body: JSON.stringify(body) });
}

async function joinToken(scope: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await adminPost("/admin/join-tokens", { scope, ...extra });
  expect(res.status).toBe(201);
  return ((await res.json()) as { token: string }).token;
}

async function joinWith(token: string, body: Record<string, unknown>) {
  return SELF.fetch(`${BASE}/nodes/join`, { method: "POST", headers: { authorization: `Bearer ${token}`, ...json }, body: JSON.stringify(body) });
}

/** Percentile of a sorted list. */
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;

describe("node registry: one node, one credential, one connection", () => {
  it("keeps node ids unique fleet-wide: another region is 409 unless it is an explicit move, which revokes the old credential", async () => {
    const lisbon = await enroll({ id: "dup-1", kind: "gpu", region: "lis", gpu: H100, capacity: 8 });
    const conflict = await adminPost("/admin/nodes", { id: "dup-1", kind: "gpu", region: "nrt", gpu: H100, capacity: 8 });
    expect(conflict.status).toBe(409);
    expect(((await conflict.json()) as { error: { code: string } }).error.code).toBe("node_exists");
    const node = await connectNode(lisbon, "dup-1");
    const moved = await adminPost("/admin/nodes", { id: "dup-1", kind: "gpu", region: "nrt", gpu: H100, capacity: 8, move: true });
    expect(moved.status).toBe(201);
    // The Lisbon socket is closed and its credential refused from now on.
    expect((await node.closed).code).toBe(CloseCode.revoked);
    const again = await SELF.fetch(`${BASE}/nodes/connect`, { headers: { upgrade: "websocket", authorization: `Bearer ${lisbon}` } });
    expect(again.status).toBe(401);
    const listed = (await (await SELF.fetch(`${BASE}/admin/nodes`, { headers: ADMIN })).json()) as { nodes: { id: string; region: string }[] };
    expect(listed.nodes.filter((n) => n.id === "dup-1")).toEqual([expect.objectContaining({ region: "nrt" })]);
  });

  it("revokes a node: its socket closes, it leaves routing, and its credential is refused everywhere, promptly (prints the time; bound 10 s)", async () => {
    const credential = await enroll({ id: "rev-1", kind: "gpu", region: "ams", gpu: H100, capacity: 8 });
    const node = await connectNode(credential, "rev-1");
    await eventually(async () => expect((await fleet()).some((n) => n.id === "rev-1")).toBe(true));
    const started = Date.now();
    const res = await SELF.fetch(`${BASE}/admin/nodes/rev-1/revoke`, { method: "POST", headers: { ...ADMIN, "x-meridian-reason": "operator left the network" } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ revoked: true, socketClosed: true });
    expect((await node.closed).code).toBe(CloseCode.revoked);
    await eventually(async () => expect((await fleet()).some((n) => n.id === "rev-1")).toBe(false));
    const connect = await SELF.fetch(`${BASE}/nodes/connect`, { headers: { upgrade: "websocket", authorization: `Bearer ${credential}` } });
    expect(connect.status).toBe(401);
    const me = await SELF.fetch(`${BASE}/nodes/me`, { headers: { authorization: `Bearer ${credential}` } });
    expect(me.status).toBe(401);
    const elapsed = Date.now() - started;
    console.log(`[registry] revocation: socket closed, out of routing and credential refused after ${elapsed} ms`);
    expect(elapsed).toBeLessThan(10_000);
    const listed = (await (await SELF.fetch(`${BASE}/admin/nodes`, { headers: ADMIN })).json()) as { nodes: { id: string; status: string }[] };
    expect(listed.nodes.find((n) => n.id === "rev-1")?.status).toBe("revoked");
  });

  it("keeps exactly one of two simultaneous hellos of one node", async () => {
    const credential = await enroll({ id: "twin-1", kind: "gpu", region: "cdg", gpu: H100, capacity: 8 });
    const [a, b] = await Promise.all([openNode(credential), openNode(credential)]);
    if (a === undefined || b === undefined) throw new Error("two sockets expected");
    const sentAt = Date.now();
    a.ws.send(hello("twin-1"));
    b.ws.send(hello("twin-1"));
    // One of them is closed as replaced (bound ~10x a busy machine's time)...
    const first = await Promise.race([
      ...[a, b].map((n) => n.closed.then((c) => ({ loser: n, code: c.code }))),
      new Promise<{ loser: null; code: string }>((r) => setTimeout(() => r({ loser: null, code: "both open" }), 15_000)),
    ]);
    console.log(`[registry] simultaneous hellos: one socket closed with ${first.code} after ${Date.now() - sentAt} ms`);
    expect(first.code).toBe(CloseCode.replaced);
    // ...and the other stays open.
    const survivor = first.loser === a ? b : a;
    expect(await Promise.race([survivor.closed.then((c) => c.code), new Promise<string>((r) => setTimeout(() => r("open"), 1500))])).toBe("open");
    await eventually(async () => expect((await fleet()).find((n) => n.id === "twin-1")?.healthy).toBe(true));
  });

  it("survives a storm of 300 simultaneous hellos of one credential with exactly one connection, and keeps answering /healthz", async () => {
    const credential = await enroll({ id: "storm-1", kind: "gpu", region: "fra", gpu: H100, capacity: 8 });
    const healthz: number[] = [];
    let storming = true;
    const prober = (async () => {
      while (storming) {
        const t = performance.now();
        const res = await SELF.fetch(`${BASE}/healthz`);
        expect(res.status).toBe(200);
        healthz.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const opened = await Promise.all(Array.from({ length: 300 }, () => openNode(credential).catch(() => null)));
    const sockets = opened.filter((n): n is TestNode => n !== null);
    for (const socket of sockets) {
      try {
        socket.ws.send(hello("storm-1"));
      } catch {
        // Already closed by the connect limit.
      }
    }
    // The survivor pings like an agent, so it stays healthy while the storm settles.
    const pinger = setInterval(() => {
      for (const socket of sockets) {
        try {
          socket.ws.send("ping");
        } catch {
          // Closed.
        }
      }
    }, 250);
    // All but one close (bound ~10x a busy machine's time); the last stays open a while after.
    const closes: (number | undefined)[] = sockets.map(() => undefined);
    sockets.forEach((n, i) => void n.closed.then((c) => (closes[i] = c.code)));
    const settleFrom = Date.now();
    await eventually(async () => expect(closes.filter((c) => c !== undefined).length).toBeGreaterThanOrEqual(sockets.length - 1), 30_000);
    const settledMs = Date.now() - settleFrom;
    await new Promise((r) => setTimeout(r, 1500));
    const settled = closes.map((c) => c ?? "open");
    storming = false;
    await prober;
    const open = settled.filter((o) => o === "open").length;
    const codes = new Map<string | number, number>();
    for (const o of settled) codes.set(o, (codes.get(o) ?? 0) + 1);
    healthz.sort((x, y) => x - y);
    console.log(`[registry] 300 hellos: ${open} open, closes ${JSON.stringify([...codes])} (all but one closed ${settledMs} ms after the hellos were sent); /healthz p50 ${pct(healthz, 0.5).toFixed(1)} ms, p99 ${pct(healthz, 0.99).toFixed(1)} ms over ${healthz.length} probes`);
    expect(open).toBe(1);
    expect(healthz.length).toBeGreaterThan(0);
    for (const [code] of codes) expect([CloseCode.replaced, CloseCode.rateLimited, "open"]).toContain(code);
    await eventually(async () => expect((await fleet()).find((n) => n.id === "storm-1")?.healthy).toBe(true));
    clearInterval(pinger);
  }, 120_000);

  it("refuses endpoints that point anywhere but a node: at hello with 4422, at enrollment with 400", async () => {
    const credential = await enroll({ id: "ep-1", kind: "gpu", region: "mad", gpu: H100, capacity: 8 });
    for (const endpoint of ["http://169.254.169.254", "http://[fe80::1]:9", "http://user:pass@127.0.0.1:9000", "https://gateway.test/", "http://10.0.0.7:8000", "http://127.0.0.1:9000/?x=1"]) {
      const node = await openNode(credential);
      node.ws.send(hello("ep-1", { endpoint }));
      const closed = await Promise.race([node.closed, new Promise<{ code: string }>((r) => setTimeout(() => r({ code: "still open" }), 15_000))]);
      expect(closed.code, endpoint).toBe(CloseCode.endpointRefused);
    }
    const refused = await adminPost("/admin/nodes", { id: "ep-2", kind: "gpu", region: "mad", gpu: H100, capacity: 8, endpoint: "http://169.254.169.254" });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("endpoint_refused");
  }, 120_000);
});

describe("join tokens", () => {
  it("enroll an operator's node within the token's scope, without the admin token", async () => {
    const token = await joinToken({ regions: ["sin"], kinds: ["gpu"], gpuClasses: ["h100", "l40s"], maxCapacity: 8 }, { uses: 2, ttlSeconds: 600 });
    const res = await joinWith(token, { id: "join-sin-1", kind: "gpu", region: "sin", gpu: H100, capacity: 8, endpoint: "http://127.0.0.1:9401" });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { credential: string; node: { id: string; region: string } };
    expect(body.node).toMatchObject({ id: "join-sin-1", region: "sin" });
    const node = await connectNode(body.credential, "join-sin-1", { endpoint: "http://127.0.0.1:9401" });
    await eventually(async () => expect((await fleet()).some((n) => n.id === "join-sin-1")).toBe(true));
    const me = await SELF.fetch(`${BASE}/nodes/me`, { headers: { authorization: `Bearer ${body.credential}` } });
    expect(await me.json()).toMatchObject({ id: "join-sin-1", state: "healthy", detector: { heartbeatMs: 1000 } });
    node.ws.close(1000);
    const audit = (await (await SELF.fetch(`${BASE}/admin/nodes/audit`, { headers: ADMIN })).json()) as { entries: { action: string; node: string | null; actor: string }[] };
    expect(audit.entries).toContainEqual(expect.objectContaining({ action: "enroll", node: "join-sin-1", actor: expect.stringMatching(/^join:/) }));
  });

  it("refuses a token outside its scope (403), once used up or expired (401), and an id that is taken (409)", async () => {
    const token = await joinToken({ regions: ["syd"], kinds: ["hotspot"] });
    const outside = await joinWith(token, { id: "join-syd-gpu", kind: "gpu", region: "syd", gpu: H100, capacity: 8 });
    expect(outside.status).toBe(403);
    expect(((await outside.json()) as { error: { code: string } }).error.code).toBe("outside_join_scope");
    const elsewhere = await joinWith(token, { id: "join-mel-1", kind: "hotspot", region: "mel", capacity: 4 });
    expect(elsewhere.status).toBe(403);
    await enroll({ id: "join-taken", kind: "hotspot", region: "syd", capacity: 4 });
    const taken = await joinWith(token, { id: "join-taken", kind: "hotspot", region: "syd", capacity: 4 });
    expect(taken.status).toBe(409);
    expect((await joinWith(token, { id: "join-syd-1", kind: "hotspot", region: "syd", capacity: 4 })).status).toBe(201);
    const used = await joinWith(token, { id: "join-syd-2", kind: "hotspot", region: "syd", capacity: 4 });
    expect(used.status).toBe(401);
    expect(((await used.json()) as { error: { code: string } }).error.code).toBe("join_token_used");
    const unknown = await joinWith("mjt_not-a-real-token", { id: "join-syd-3", kind: "hotspot", region: "syd", capacity: 4 });
    expect(unknown.status).toBe(401);
    const listed = (await (await SELF.fetch(`${BASE}/admin/join-tokens`, { headers: ADMIN })).json()) as { tokens: { id: string; usesLeft: number }[] };
    expect(JSON.stringify(listed)).not.toContain(token);
  });

  it("cannot be created by an editor, and a revoked token stops working", async () => {
    const editor = await SELF.fetch(`${BASE}/admin/join-tokens`, { method: "POST", headers: { authorization: "Bearer test-editor-token-0123456789", ...json }, body: JSON.stringify({ scope: {} }) });
    expect(editor.status).toBe(403);
    const res = await adminPost("/admin/join-tokens", { scope: { regions: ["bom"] } });
    const { token, id } = (await res.json()) as { token: string; id: string };
    expect((await SELF.fetch(`${BASE}/admin/join-tokens/${id}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
    expect((await joinWith(token, { id: "join-bom-1", kind: "hotspot", region: "bom", capacity: 4 })).status).toBe(401);
  });
});
