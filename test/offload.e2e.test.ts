/**
 * Carrier offload end to end: wrangler dev, a simulated partner fleet (backbone nodes and
 * hotspots in three regions) over real sockets, real HTTP clients. Under a congestion
 * schedule the offload share follows the dial, and the ledger's totals equal exactly what
 * the clients received, aborted streams included, across a crash of the ledger object.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger, startSimulator, type PlannedNode, type SimulatorHandle } from "@meridian/node-agent";
import { subscriberBucket } from "@meridian/routing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDevVars, freePort, startGateway, type LocalGateway } from "../scripts/dev-gateway";
import { createTenantKey } from "./support/tenants";

const PARTNER = "e2e-tel";
const RULES = { maxHotspotKm: 50, minTier: 2, congestionThreshold: 0.7, hysteresis: 0.2, dial: { base: 20, max: 80 } };
const PLACES = {
  lhr: { "x-client-lat": "51.5074", "x-client-lon": "-0.1278", "x-client-country": "GB" },
  man: { "x-client-lat": "53.4808", "x-client-lon": "-2.2426", "x-client-country": "GB" },
  ams: { "x-client-lat": "52.3676", "x-client-lon": "4.9041", "x-client-country": "NL" },
} as const;
type Place = keyof typeof PLACES;
const REGIONS = Object.keys(PLACES) as Place[];

const FLEET: PlannedNode[] = [
  ...REGIONS.map((r): PlannedNode => ({ id: `${PARTNER}-${r}-bb`, kind: "carrier", region: r, capacity: 64, partner: PARTNER })),
  ...REGIONS.map((r): PlannedNode => ({ id: `hs-${r}-1`, kind: "hotspot", region: r, capacity: 64, maxMbps: 300 })),
  { id: "hs-lhr-2", kind: "hotspot", region: "lhr", capacity: 64, maxMbps: 300 },
  // Tier 1 (10 Mbit/s backhaul): below the partner's minimum, never offloaded to.
  { id: "hs-lhr-weak", kind: "hotspot", region: "lhr", capacity: 64, maxMbps: 10 },
];

const SUBSCRIBERS = Array.from({ length: 90 }, (_, i) => ({ key: `imsi-2340${String(i).padStart(6, "0")}`, place: REGIONS[i % REGIONS.length] ?? "lhr" }));

let gateway: LocalGateway;
let sim: SimulatorHandle;
let stateDir: string;
let admin: Record<string, string>;

/** What the clients saw, per node: requests and bytes received (completed and abandoned streams apart). */
const received = new Map<string, { route: string; requests: number; bytes: number; aborted: number; abortedBytes: number }>();
const PACED_CHUNK = 1000;

function tally(node: string, route: string, bytes: number, aborted: boolean): void {
  const t = received.get(node) ?? { route, requests: 0, bytes: 0, aborted: 0, abortedBytes: 0 };
  t.requests++;
  t.bytes += bytes;
  if (aborted) {
    t.aborted++;
    t.abortedBytes += bytes;
  }
  received.set(node, t);
}

/** The carrier's tenant key (test/support/tenants.ts), set in beforeAll. */
let clientAuth: Record<string, string> = {};
const headersOf = (s: (typeof SUBSCRIBERS)[number]) => ({ ...clientAuth, ...PLACES[s.place], "x-meridian-kind": "hotspot", "x-meridian-carrier": PARTNER, "x-meridian-subscriber": s.key });

/** A whole download; returns the route taken. */
async function download(s: (typeof SUBSCRIBERS)[number], bytes: number): Promise<string> {
  const res = await fetch(`${gateway.url}/v1/data?bytes=${bytes}`, { headers: headersOf(s) });
  expect(res.status).toBe(200);
  const body = new Uint8Array(await res.arrayBuffer());
  const node = res.headers.get("x-meridian-node") ?? "?";
  const route = res.headers.get("x-meridian-route") ?? "?";
  tally(node, route, body.byteLength, false);
  return `${route}${route === "offload" ? "" : ` (${res.headers.get("x-meridian-offload-reason")})`}`;
}

/**
 * A paced download the subscriber walks away from after `keep` bytes, right after a chunk. The
 * ledger counts bytes handed to the client's connection until the gateway learns the client
 * is gone; through wrangler dev's local proxy that happens at the next writes, so up to two
 * more paced chunks count than the client read (they were carried; the client dropped them).
 */
async function abandon(s: (typeof SUBSCRIBERS)[number], keep: number): Promise<void> {
  const walkAway = new AbortController();
  const res = await fetch(`${gateway.url}/v1/data?bytes=1000000&chunkBytes=${PACED_CHUNK}&pauseMs=200`, { headers: headersOf(s), signal: walkAway.signal });
  const reader = res.body?.getReader();
  if (reader === undefined) throw new Error("no body");
  let got = 0;
  while (got < keep) {
    const { value, done } = await reader.read();
    if (done) break;
    got += value.byteLength;
  }
  walkAway.abort();
  tally(res.headers.get("x-meridian-node") ?? "?", res.headers.get("x-meridian-route") ?? "?", got, true);
}

async function dialFor(place: Place): Promise<{ percent: number; engaged: boolean; hotspots: number }> {
  const res = await fetch(`${gateway.url}/route`, { headers: { ...clientAuth, ...PLACES[place], "x-meridian-carrier": PARTNER } });
  const body = (await res.json()) as { offload: { dial: { percent: number; engaged: boolean } | null; hotspots: { qualifying: number } } };
  if (body.offload.dial === null) throw new Error("no backbone node");
  return { ...body.offload.dial, hotspots: body.offload.hotspots.qualifying };
}

async function untilDial(expected: number, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (;;) {
    const dials = await Promise.all(REGIONS.map(dialFor));
    if (dials.every((d) => Math.abs(d.percent - expected) < 0.01 && d.hotspots > 0)) {
      console.log(`[e2e offload] dial at ${expected} % in every region after ${Date.now() - started} ms`);
      return;
    }
    if (Date.now() > deadline) throw new Error(`dial did not reach ${expected}: ${JSON.stringify(dials)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function setCongestion(level: number): void {
  for (const node of sim.nodes) if (node.plan.kind === "carrier") node.workload.setCongestion(level);
}

beforeAll(async () => {
  const { secrets } = ensureDevVars();
  admin = { authorization: `Bearer ${secrets.ADMIN_TOKEN}` };
  stateDir = mkdtempSync(join(tmpdir(), "meridian-offload-"));
  gateway = await startGateway({ port: await freePort(), persistTo: stateDir, output: "ignore", vars: { DEV_CHAOS_HOOKS: "true" } });
  clientAuth = (await createTenantKey(gateway.url, secrets.ADMIN_TOKEN, { id: "e2e-carrier" })).auth;
  const current = await fetch(`${gateway.url}/admin/carriers`, { headers: admin });
  const put = await fetch(`${gateway.url}/admin/carriers/${PARTNER}`, {
    method: "PUT",
    headers: { ...admin, "content-type": "application/json", "if-match": current.headers.get("etag") ?? "", "x-meridian-reason": "e2e partner" },
    body: JSON.stringify({ name: "E2E Telecom", regions: REGIONS, offload: RULES }),
  });
  expect(put.status).toBe(200);
  sim = await startSimulator({ gatewayUrl: gateway.url, adminToken: secrets.ADMIN_TOKEN, nodes: 0, plan: FLEET, heartbeatMs: 250, logger: silentLogger, nodeLogger: () => silentLogger });
  expect(sim.connectedCount()).toBe(FLEET.length);
  setCongestion(0.1);
  await untilDial(RULES.dial.base);
});

afterAll(async () => {
  await sim?.close({ drain: false });
  await gateway?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("carrier offload end to end", () => {
  it("follows the dial under a congestion schedule, and the ledger matches what the clients received, across a crash of the ledger object", async () => {
    // Each phase: backbone congestion, the dial it must produce, then every subscriber downloads.
    const schedule = [
      { congestion: 0.1, dial: 20 },
      { congestion: 1.0, dial: 80 },
      // Inside the hysteresis band: still boosted, the dial follows congestion down.
      { congestion: 0.6, dial: 20 + 60 * ((0.6 - 0.5) / 0.5) },
      { congestion: 0.3, dial: 20 },
    ];
    let sizeSeed = 7;
    const nextSize = () => (sizeSeed = (sizeSeed * 1103515245 + 12345) % 2 ** 31) % 50_000;
    for (const [phase, step] of schedule.entries()) {
      setCongestion(step.congestion);
      await untilDial(step.dial);
      const routes = new Map<string, string>();
      // Ten at a time; the ledger object is crashed in the middle of the second phase.
      for (let i = 0; i < SUBSCRIBERS.length; i += 10) {
        if (phase === 1 && i === 40) {
          const crash = await fetch(`${gateway.url}/admin/offload/ledger/${PARTNER}/crash`, { method: "POST", headers: admin });
          expect(crash.status).toBe(200);
        }
        await Promise.all(SUBSCRIBERS.slice(i, i + 10).map(async (s) => routes.set(s.key, await download(s, nextSize()))));
      }
      // Exactly the subscribers below the dial are offloaded (every region has a qualifying hotspot).
      for (const s of SUBSCRIBERS) expect(routes.get(s.key), `${s.key} in phase ${phase}`).toBe(subscriberBucket(s.key) < step.dial ? "offload" : "backbone (outside-dial)");
    }
    // Aborted streams, offloaded and not.
    await Promise.all(SUBSCRIBERS.slice(0, 12).map((s, i) => abandon(s, 1000 * (1 + (i % 3)))));

    expect([...received.keys()]).not.toContain("hs-lhr-weak");
    const expected = { requests: 0, bytes: 0 };
    for (const t of received.values()) {
      expected.requests += t.requests;
      expected.bytes += t.bytes;
    }
    const from = new Date(Date.now() - 2 * 3600_000).toISOString();
    const to = new Date(Date.now() + 3600_000).toISOString();
    type Usage = { totals: Record<string, { requests: number; bytes: number; abortedRequests: number }>; rows: { node: string; route: string; requests: number; bytes: number; abortedRequests: number }[] };
    let usage: Usage | undefined;
    const countingFrom = Date.now();
    const deadline = countingFrom + 30_000;
    for (;;) {
      const res = await fetch(`${gateway.url}/admin/offload/usage?partner=${PARTNER}&from=${from}&to=${to}`, { headers: admin });
      usage = (await res.json()) as Usage;
      const counted = (usage.totals.offload?.requests ?? 0) + (usage.totals.backbone?.requests ?? 0);
      if (counted >= expected.requests || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    console.log(`[e2e offload] the ledger counted every request ${Date.now() - countingFrom} ms after the last download`);
    const byNode = new Map<string, { route: string; requests: number; bytes: number; aborted: number }>();
    for (const row of usage.rows) {
      const t = byNode.get(row.node) ?? { route: row.route, requests: 0, bytes: 0, aborted: 0 };
      t.requests += row.requests;
      t.bytes += row.bytes;
      t.aborted += row.abortedRequests;
      byNode.set(row.node, t);
    }
    expect([...byNode.keys()].sort()).toEqual([...received.keys()].sort());
    let inFlightBytes = 0;
    for (const [node, seen] of received) {
      const ledger = byNode.get(node);
      // Requests, routes and aborted counts: exact. Bytes: exact for every completed stream;
      // for abandoned ones, what the client read plus at most two paced chunks in flight.
      expect({ node, route: ledger?.route, requests: ledger?.requests, aborted: ledger?.aborted }).toEqual({ node, route: seen.route, requests: seen.requests, aborted: seen.aborted });
      const extra = (ledger?.bytes ?? 0) - seen.bytes;
      expect(extra, node).toBeGreaterThanOrEqual(0);
      expect(extra, node).toBeLessThanOrEqual(2 * PACED_CHUNK * seen.aborted);
      expect(extra % PACED_CHUNK, node).toBe(0);
      inFlightBytes += extra;
    }
    console.log(`[e2e offload] ${expected.requests} requests, ${expected.bytes} bytes received; ledger: requests exact per node, completed bytes exact, 12 abandoned streams counted ${inFlightBytes} bytes in flight beyond what their clients read; one ledger crash mid-run`);
  });
});
