/**
 * Chaos under load, end to end: wrangler dev, a simulated fleet (1 s heartbeats, +-200 ms
 * jitter, 1 % lost frames) and an open-loop client at a fixed arrival rate. While the load
 * runs, 10 % of the nodes are killed (socket cut, HTTP refused), 5 % frozen (silent, HTTP
 * hangs) and a few more flap (frozen, then back). Two more nodes are real `meridian-node`
 * processes, the nearest hotspots of two clients: one gets kill -9 with the kills, the other
 * SIGSTOP with the flaps and SIGCONT after (it then reconnects, as a resumed agent does).
 *
 * Every node's HTTP handler is wrapped to record what reached it, so the test can tell not
 * only what clients saw but where their requests went:
 * - at least 99.9 % of the (idempotent) requests succeed, each tried on at most two nodes;
 * - no answer came from a node after it was hit, and the policy allows every node that
 *   answered, fallbacks included (checked against the compiled live policy, independently
 *   of the gateway's own verdict);
 * - no request sent after a victim's detection time reaches it (closed: 1 s, silent: 3.5 s;
 *   both with slack for a loaded machine and the snapshot refresh);
 * - no untouched node is ever seen down; a flapped node comes back in slow start.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import { silentLogger, startSimulator, type SimulatedNode, type SimulatorHandle } from "@meridian/node-agent";
import { compilePolicy, type ClientContext } from "@meridian/policy";
import { PolicyDocumentSchema, type GpuClass, type NodeKind } from "@meridian/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDevVars, freePort, startGateway, type LocalGateway } from "../scripts/dev-gateway";
import { createTenantKey } from "./support/tenants";
import { startAgent, stopAgent, type AgentProcess, type AgentSpec } from "./support/agents";

const NODES = 60;
const RATE_PER_S = 80;
const LOAD_S = 40;
const KILL_AT_S = 8;
const FREEZE_AT_S = 12;
const FLAP_AT_S = 18;
const THAW_AFTER_S = 8;
/**
 * Bounds on routing to a node after its hit: ~10x the detection goals (1 s closed, 3.5 s silent
 * would be 10 s and 35 s; silent is held at 20 s so frozen nodes, hit 28 s before the load ends,
 * are still checked). The goals live in the failover benchmark; the test prints the figures.
 */
const CLOSED_OUT_MS = 10_000;
const SILENT_OUT_MS = 20_000;
const FLEET_POLL_MS = 500;
/** Ids sort before the simulated nodes' ("chaos-<region>-..."), so they win ties in their region. */
const REAL_KILLED: AgentSpec = { id: "chaos-0-gru-hotspot", region: "gru", kind: "hotspot" };
const REAL_STOPPED: AgentSpec = { id: "chaos-0-bom-hotspot", region: "bom", kind: "hotspot" };

interface ClientSpec {
  name: string;
  headers: Record<string, string>;
  context: ClientContext;
  kind?: "gpu" | "hotspot";
}

const PLACES = [
  { name: "tokyo", lat: "35.6762", lon: "139.6503", country: "JP" },
  { name: "frankfurt", lat: "50.1109", lon: "8.6821", country: "DE" },
  { name: "new-york", lat: "40.7128", lon: "-74.006", country: "US" },
  { name: "sao-paulo", lat: "-23.5505", lon: "-46.6333", country: "BR" },
  { name: "mumbai", lat: "19.076", lon: "72.8777", country: "IN" },
  { name: "beijing", lat: "39.9042", lon: "116.4074", country: "CN" },
];

/** Every place asks for anything, a hotspot and a GPU; Paris also asks for EU residency. */
const CLIENTS: ClientSpec[] = [
  ...PLACES.flatMap((p) =>
    ([undefined, "hotspot", "gpu"] as const).map((kind) => ({
      name: `${p.name}/${kind ?? "any"}`,
      headers: { "x-client-lat": p.lat, "x-client-lon": p.lon, "x-client-country": p.country, ...(kind ? { "x-meridian-kind": kind } : {}) },
      context: { country: p.country },
      ...(kind ? { kind } : {}),
    })),
  ),
  { name: "paris/eu", headers: { "x-client-lat": "48.8566", "x-client-lon": "2.3522", "x-client-country": "FR", "x-meridian-residency": "eu" }, context: { country: "FR", residency: "eu" } },
];

/** This file's tenant key (test/support/tenants.ts), set in beforeAll. */
let clientAuth: Record<string, string> = {};

interface Arrival {
  node: string;
  at: number;
  request: string | undefined;
}

interface Outcome {
  id: string;
  client: ClientSpec;
  sentAt: number;
  doneAt: number;
  status: number;
  node: string | null;
  route: string | null;
  error?: string;
}

let gateway: LocalGateway;
let stateDir: string;
let sim: SimulatorHandle;
let adminToken: string;
const arrivals: Arrival[] = [];
const realAgents: AgentProcess[] = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Records every request that reaches a node's HTTP handler, whatever the node's state. */
function recordArrivals(node: SimulatedNode): void {
  const serve = node.serve;
  node.serve = (req: IncomingMessage, res: ServerResponse) => {
    const request = req.headers["x-chaos-request"];
    arrivals.push({ node: node.plan.id, at: performance.now(), request: typeof request === "string" ? request : undefined });
    serve(req, res);
  };
}

async function fleetHealth(): Promise<Map<string, { state: string; health: string; slowStart?: unknown }>> {
  const res = await fetch(`${gateway.url}/admin/fleet`, { headers: { authorization: `Bearer ${adminToken}` } });
  if (!res.ok) throw new Error(`/admin/fleet answered ${res.status}`);
  const body = (await res.json()) as { nodes: { id: string; state: string; health: string; slowStart?: unknown }[] };
  return new Map(body.nodes.map((n) => [n.id, n]));
}

async function send(id: string, client: ClientSpec): Promise<Outcome> {
  const sentAt = performance.now();
  try {
    const res = await fetch(`${gateway.url}/v1/whoami`, { headers: { ...clientAuth, ...client.headers, "x-chaos-request": id }, signal: AbortSignal.timeout(20_000) });
    const body = res.status === 200 ? ((await res.json()) as { node: string }) : (await res.text(), null);
    const node = res.headers.get("x-meridian-node");
    if (body !== null && body.node !== node) throw new Error(`x-meridian-node ${node} but ${body.node} answered`);
    return { id, client, sentAt, doneAt: performance.now(), status: res.status, node, route: res.headers.get("x-meridian-route") };
  } catch (error) {
    return { id, client, sentAt, doneAt: performance.now(), status: 0, node: null, route: null, error: String(error) };
  }
}

beforeAll(async () => {
  const { secrets } = ensureDevVars();
  adminToken = secrets.ADMIN_TOKEN;
  stateDir = mkdtempSync(join(tmpdir(), "meridian-chaos-"));
  gateway = await startGateway({ port: await freePort(), persistTo: stateDir, output: "ignore" });
  clientAuth = (await createTenantKey(gateway.url, adminToken, { id: "e2e-chaos" })).auth;
  sim = await startSimulator({
    gatewayUrl: gateway.url,
    adminToken,
    nodes: NODES,
    seed: 7,
    prefix: "chaos",
    heartbeatMs: 1000,
    jitterMs: 200,
    lossRate: 0.01,
    connectConcurrency: 16,
    logger: silentLogger,
    nodeLogger: () => silentLogger,
  });
  for (const node of sim.nodes) recordArrivals(node);
  realAgents.push(...(await Promise.all([REAL_KILLED, REAL_STOPPED].map((spec) => startAgent(gateway.url, adminToken, spec)))));
  const ids = [...sim.nodes.map((n) => n.plan.id), REAL_KILLED.id, REAL_STOPPED.id];
  const upFrom = performance.now();
  const deadline = upFrom + 90_000;
  for (;;) {
    const fleet = await fleetHealth().catch(() => new Map());
    // Routable: with 1 % loss a node is now and then briefly suspect.
    if (ids.every((id) => ["healthy", "suspect"].includes(fleet.get(id)?.health ?? ""))) {
      console.log(`[chaos] fleet routable ${(performance.now() - upFrom).toFixed(0)} ms after the agents started`);
      break;
    }
    if (performance.now() > deadline) throw new Error("the simulated fleet did not come up in 90 s");
    await sleep(250);
  }
}, 120_000);

afterAll(async () => {
  for (const agent of realAgents) stopAgent(agent);
  await sim?.close({ drain: false });
  await gateway?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("chaos under load", () => {
  it("keeps >= 99.9 % of idempotent requests succeeding, none served by a dead, silent or refused node", { timeout: 150_000 }, async () => {
    const policyRes = await fetch(`${gateway.url}/admin/policy`, { headers: { authorization: `Bearer ${adminToken}` } });
    const live = (await policyRes.json()) as { version: number; document: unknown };
    const policy = compilePolicy(PolicyDocumentSchema.parse(live.document), live.version);
    const plans = new Map<string, { region: string; kind: NodeKind; gpu?: { class: GpuClass } }>([...sim.nodes.map((n) => [n.plan.id, n.plan] as const), ...[REAL_KILLED, REAL_STOPPED].map((spec) => [spec.id, { region: spec.region, kind: spec.kind }] as const)]); // the real agents are hotspots
    const agentOf = (spec: AgentSpec) => {
      const agent = realAgents.find((a) => a.id === spec.id);
      if (agent === undefined) throw new Error(`agent ${spec.id} did not start`);
      return agent.process;
    };

    // Clients the fleet can serve at all before the chaos (some may be refused outright: 451).
    const clients: ClientSpec[] = [];
    for (const client of CLIENTS) if ((await send("probe", client)).status === 200) clients.push(client);
    expect(clients.length).toBeGreaterThanOrEqual(CLIENTS.length - 2);

    // 10 % killed, 5 % frozen, 5 % flapped; picked when the kills start (below).
    const killed: string[] = [];
    const frozen: string[] = [];
    const flapped: string[] = [];
    const hitAt = new Map<string, number>();
    const thawedAt = new Map<string, number>();
    const victims = new Set<string>();
    /**
     * Seeded victims, except that each group starts with one of the three busiest nodes so far,
     * so the chaos hits nodes that serve this load (random ones may serve none of it). The
     * groups are hit seconds apart, so a client does not lose its primary and its fallback at once.
     */
    const pickVictims = () => {
      const served = new Map<string, number>();
      for (const a of arrivals) served.set(a.node, (served.get(a.node) ?? 0) + 1);
      const busiest = [...served.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([id]) => id).slice(0, 3);
      const seeded = sim.pickChaosVictims(10, 10, 7);
      const others = [...seeded.killed, ...seeded.frozen, ...sim.nodes.map((n) => n.plan.id)].filter((id, i, all) => !busiest.includes(id) && all.indexOf(id) === i);
      const sizes = [Math.round(NODES * 0.1), Math.round(NODES * 0.05), Math.round(NODES * 0.05)];
      [killed, frozen, flapped].forEach((group, g) => {
        const first = busiest[g];
        if (first !== undefined) group.push(first);
        while (group.length < (sizes[g] ?? 0)) {
          const next = others.shift();
          if (next === undefined) break;
          group.push(next);
        }
        for (const id of group) victims.add(id);
      });
      victims.add(REAL_KILLED.id);
      victims.add(REAL_STOPPED.id);
    };
    const seenDown = new Set<string>();
    const slowStarted = new Set<string>();

    const started = performance.now();
    const at = (s: number) => started + s * 1000;
    const chaos = (async () => {
      await sleep(at(KILL_AT_S) - performance.now());
      pickVictims();
      for (const id of killed) {
        hitAt.set(id, performance.now());
        sim.kill(id);
      }
      hitAt.set(REAL_KILLED.id, performance.now());
      agentOf(REAL_KILLED).kill("SIGKILL");
      await sleep(at(FREEZE_AT_S) - performance.now());
      for (const id of frozen) {
        hitAt.set(id, performance.now());
        sim.freeze(id);
      }
      await sleep(at(FLAP_AT_S) - performance.now());
      for (const id of flapped) {
        hitAt.set(id, performance.now());
        sim.freeze(id);
      }
      hitAt.set(REAL_STOPPED.id, performance.now());
      agentOf(REAL_STOPPED).kill("SIGSTOP");
      await sleep(at(FLAP_AT_S + THAW_AFTER_S) - performance.now());
      for (const id of flapped) {
        thawedAt.set(id, performance.now());
        sim.thaw(id);
      }
      thawedAt.set(REAL_STOPPED.id, performance.now());
      agentOf(REAL_STOPPED).kill("SIGCONT");
    })();

    let loadDone = false;
    const watcher = (async () => {
      while (!loadDone) {
        const fleet = await fleetHealth().catch(() => null);
        if (fleet !== null) {
          for (const id of plans.keys()) {
            const entry = fleet.get(id);
            if (!victims.has(id) && (entry === undefined || entry.health === "down")) seenDown.add(id);
            if ((flapped.includes(id) || id === REAL_STOPPED.id) && thawedAt.has(id) && entry?.state === "healthy" && entry.slowStart !== undefined) slowStarted.add(id);
          }
        }
        await sleep(FLEET_POLL_MS);
      }
    })();

    // Open loop: request i leaves at started + i / rate, whether or not earlier ones answered.
    const total = RATE_PER_S * LOAD_S;
    const pending: Promise<Outcome>[] = [];
    for (let i = 0; i < total; i++) {
      const due = started + (i * 1000) / RATE_PER_S;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const client = clients[i % clients.length];
      if (client !== undefined) pending.push(send(`r${i}`, client));
    }
    const outcomes = await Promise.all(pending);
    await chaos;
    // Let the flapped nodes finish their return (2+ good checks) before the watcher stops.
    const settleBy = performance.now() + 10_000;
    while (slowStarted.size < flapped.length + 1 && performance.now() < settleBy) await sleep(FLEET_POLL_MS);
    loadDone = true;
    await watcher;

    const failed = outcomes.filter((o) => o.status !== 200);
    const failovers = outcomes.filter((o) => o.route === "failover").length;
    const servedAfterHit = outcomes.filter((o) => {
      if (o.node === null || o.status !== 200) return false;
      const hit = hitAt.get(o.node);
      const thawed = thawedAt.get(o.node);
      // Sent after the hit and answered before any thaw: a dead or silent node cannot have done it.
      return hit !== undefined && o.sentAt > hit && (thawed === undefined || o.doneAt < thawed);
    });
    const refused = outcomes.filter((o) => {
      const plan = o.node === null ? undefined : plans.get(o.node);
      if (o.status !== 200 || plan === undefined) return false;
      const verdict = policy.forClient(o.client.context)({ region: plan.region, kind: plan.kind, ...(plan.gpu ? { gpuClass: plan.gpu.class } : {}) });
      return !verdict.allowed || (o.client.kind !== undefined && plan.kind !== o.client.kind);
    });
    // Judged by when the client sent the request, i.e. when the gateway chose the node: a
    // fallback chosen in time may be reached seconds later, after a hung primary's timeout.
    const sentAt = new Map(outcomes.map((o) => [o.id, o.sentAt]));
    const routedLate = (a: Arrival, outMs: number) => {
      const hit = hitAt.get(a.node);
      const sent = a.request === undefined ? undefined : sentAt.get(a.request);
      return hit !== undefined && sent !== undefined && sent > hit + outMs;
    };
    const describeArrival = (a: Arrival) => `${a.request} at ${a.node}, sent ${Math.round((sentAt.get(a.request ?? "") ?? 0) - (hitAt.get(a.node) ?? 0))} ms after its hit`;
    const lateArrivals = arrivals.filter((a) => !thawedAt.has(a.node) && routedLate(a, killed.includes(a.node) ? CLOSED_OUT_MS : SILENT_OUT_MS));
    const flapArrivals = arrivals.filter((a) => {
      const thawed = thawedAt.get(a.node);
      return thawed !== undefined && a.at < thawed && routedLate(a, SILENT_OUT_MS);
    });

    // The figures behind the bounds: the latest a request reached a victim, counted from its hit.
    const latestAfterHit = (nodes: readonly string[]) =>
      Math.max(0, ...arrivals.filter((a) => nodes.includes(a.node) && !thawedAt.has(a.node)).map((a) => (sentAt.get(a.request ?? "") ?? 0) - (hitAt.get(a.node) ?? Number.POSITIVE_INFINITY)));
    console.log(`[chaos] latest request routed to a victim after its hit: killed ${latestAfterHit(killed).toFixed(0)} ms (bound ${CLOSED_OUT_MS}), frozen ${latestAfterHit(frozen).toFixed(0)} ms (bound ${SILENT_OUT_MS})`);
    const successRate = (outcomes.length - failed.length) / outcomes.length;
    console.log(
      `[chaos] ${outcomes.length} requests at ${RATE_PER_S}/s over ${clients.length} clients; killed ${killed.length} + 1 process (kill -9), froze ${frozen.length}, flapped ${flapped.length} + 1 process (SIGSTOP, SIGCONT); ` +
        `success ${(successRate * 100).toFixed(2)} % (${failed.length} failed), ${failovers} failed over; ` +
        `late arrivals ${lateArrivals.length + flapArrivals.length}; false downs ${seenDown.size}; back in slow start ${slowStarted.size}/${flapped.length + 1}`,
    );
    for (const o of failed.slice(0, 5)) console.log(`[chaos] failed ${o.id} ${o.client.name}: ${o.status} ${o.error ?? ""}`);

    expect(outcomes).toHaveLength(total);
    expect(successRate).toBeGreaterThanOrEqual(0.999);
    // Tried on at most two nodes: the gateway says which attempt answered.
    expect(outcomes.filter((o) => o.status === 200 && o.route !== "primary" && o.route !== "failover")).toEqual([]);
    expect(servedAfterHit.map((o) => `${o.id} by ${o.node}`)).toEqual([]);
    expect(refused.map((o) => `${o.id} (${o.client.name}) by ${o.node}`)).toEqual([]);
    expect(lateArrivals.map(describeArrival)).toEqual([]);
    expect(flapArrivals.map(describeArrival)).toEqual([]);
    expect([...seenDown]).toEqual([]);
    expect([...slowStarted].sort()).toEqual([...flapped, REAL_STOPPED.id].sort());
    // The real processes served their clients before they were hit.
    for (const spec of [REAL_KILLED, REAL_STOPPED]) expect(outcomes.some((o) => o.node === spec.id && o.doneAt < (hitAt.get(spec.id) ?? 0))).toBe(true);
    // The chaos hit nodes that were serving: some victim of each kind had traffic before its hit.
    const servedBeforeHit = (ids: readonly string[]) => ids.filter((id) => arrivals.some((a) => a.node === id && a.at < (hitAt.get(id) ?? 0)));
    expect(servedBeforeHit(killed).length).toBeGreaterThan(0);
    expect(servedBeforeHit([...frozen, ...flapped]).length).toBeGreaterThan(0);
  });
});
