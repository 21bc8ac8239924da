/**
 * Hub cells, end to end inside workerd, with HUB_CELL_CAPACITY = 3 (the gateway-cells project
 * in vitest.config.ts): the 4th node of a region goes to the hub `<region>/1` and is routable
 * like any other; its close, its revocation and a Directory restart all reach that cell.
 */
import { CloseCode, CredentialClaimsSchema } from "@meridian/protocol";
import { SELF, env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Directory } from "../../src/directory";
import { writeTicket } from "../../src/hub/connect-ticket";
import type { LivenessClock } from "../../src/hub/liveness-clock";
import type { RegionHub } from "../../src/hub/region-hub";
import type { NodeRegistry } from "../../src/registry";
import { ADMIN, BASE, CLIENT_KEY, connectNode, enroll, eventually, fleet, silenceNode, type TestNode } from "../helpers";

const H100 = { class: "h100", vramGb: 80, count: 8 };
const WARSAW_CLIENT = { ...CLIENT_KEY, "x-client-lat": "52.23", "x-client-lon": "21.01", "x-client-country": "PL" };

interface Registered {
  id: string;
  hub: string;
  status: string;
}

async function registered(): Promise<Registered[]> {
  const res = await SELF.fetch(`${BASE}/admin/nodes`, { headers: ADMIN });
  return ((await res.json()) as { nodes: Registered[] }).nodes;
}

const hubOf = async (id: string) => (await registered()).find((n) => n.id === id)?.hub;

/** Node ids whose live socket a hub holds, as it would tell a restarted Directory. */
const liveAt = (hub: string) => runInDurableObject(env.REGION_HUB.getByName(hub), (instance: RegionHub) => instance.liveRecords().map((r) => r.id).sort());

async function route(): Promise<{ status: number; node: string | null; region: string | null }> {
  const res = await SELF.fetch(`${BASE}/route`, { headers: { ...WARSAW_CLIENT, "x-meridian-gpu": "h100" } });
  const body = (await res.json()) as { node?: { id: string; region: string } | null };
  return { status: res.status, node: body.node?.id ?? null, region: body.node?.region ?? null };
}

async function enrollAndConnect(id: string, region: string): Promise<{ credential: string; node: TestNode }> {
  const credential = await enroll({ id, kind: "gpu", region, gpu: H100, capacity: 8 });
  return { credential, node: await connectNode(credential, id) };
}

describe("hub cells (capacity 3)", () => {
  it("puts the 4th node of a region in cell 1, routes to it like any other, and drops it from routing when it closes", async () => {
    const first = [await enrollAndConnect("waw-1", "waw"), await enrollAndConnect("waw-2", "waw"), await enrollAndConnect("waw-3", "waw")];
    const fourth = await enrollAndConnect("waw-4", "waw");
    expect(await Promise.all(["waw-1", "waw-2", "waw-3", "waw-4"].map(hubOf))).toEqual(["waw", "waw", "waw", "waw/1"]);
    expect(await liveAt("waw")).toEqual(["waw-1", "waw-2", "waw-3"]);
    expect(await liveAt("waw/1")).toEqual(["waw-4"]);

    // Routing sees one region of four nodes: cells are invisible to it.
    await eventually(async () => {
      const nodes = (await fleet()).filter((n) => n.region === "waw");
      expect(nodes.map((n) => n.id).sort()).toEqual(["waw-1", "waw-2", "waw-3", "waw-4"]);
      expect(nodes.every((n) => n.healthy)).toBe(true);
    });
    // With the cell-0 nodes gone, the Warsaw client is served by the cell-1 node.
    for (const { node } of first) node.ws.close(1000, "done");
    await eventually(async () => expect(await route()).toEqual({ status: 200, node: "waw-4", region: "waw" }));

    // The operator's self-view asks the node's own cell.
    const me = (await (await SELF.fetch(`${BASE}/nodes/me`, { headers: { authorization: `Bearer ${fourth.credential}` } })).json()) as { hub: string; state: string };
    expect(me).toMatchObject({ hub: "waw/1", state: "healthy" });

    fourth.node.ws.close(1000, "done");
    await eventually(async () => expect((await fleet()).some((n) => n.id === "waw-4")).toBe(false));
    await eventually(async () => expect((await route()).status).toBe(503));
    expect(await liveAt("waw/1")).toEqual([]);
  });

  it("keeps a node's cell across reconnects and re-enrollment, reuses a revoked node's place, and revokes in the right cell", async () => {
    for (const id of ["hel-1", "hel-2", "hel-3"]) await enroll({ id, kind: "gpu", region: "hel", gpu: H100, capacity: 8 });
    const { credential, node } = await enrollAndConnect("hel-4", "hel");
    expect(await hubOf("hel-4")).toBe("hel/1");
    node.ws.close(1000, "reconnect");
    await eventually(async () => expect(await liveAt("hel/1")).toEqual([]));
    const again = await connectNode(credential, "hel-4");
    expect(await liveAt("hel/1")).toEqual(["hel-4"]);
    again.ws.close(1000, "re-enroll");

    const reissued = await enroll({ id: "hel-4", kind: "gpu", region: "hel", gpu: H100, capacity: 8 });
    expect(await hubOf("hel-4")).toBe("hel/1");

    // A revoked node frees its place: the next node of the region fills cell 0 before cell 1.
    const revokeTwo = await SELF.fetch(`${BASE}/admin/nodes/hel-2/revoke`, { method: "POST", headers: { ...ADMIN, "x-meridian-reason": "left the network" } });
    expect(await revokeTwo.json()).toMatchObject({ revoked: true, hub: "hel" });
    await enroll({ id: "hel-5", kind: "gpu", region: "hel", gpu: H100, capacity: 8 });
    expect(await hubOf("hel-5")).toBe("hel");
    await enroll({ id: "hel-6", kind: "gpu", region: "hel", gpu: H100, capacity: 8 });
    expect(await hubOf("hel-6")).toBe("hel/1");

    // Revocation closes the socket at the node's own cell.
    const live = await connectNode(reissued, "hel-4");
    const revoked = await SELF.fetch(`${BASE}/admin/nodes/hel-4/revoke`, { method: "POST", headers: { ...ADMIN, "x-meridian-reason": "test" } });
    expect(await revoked.json()).toMatchObject({ revoked: true, socketClosed: true, hub: "hel/1" });
    expect((await live.closed).code).toBe(CloseCode.revoked);

    // A move takes the node out of its cell and into the new region's.
    await enroll({ id: "hel-6", kind: "gpu", region: "osl", gpu: H100, capacity: 8, move: true });
    expect(await hubOf("hel-6")).toBe("osl");
    const helCells = (await registered()).filter((n) => n.status !== "revoked" && n.hub.startsWith("hel")).map((n) => n.hub);
    expect(helCells.sort()).toEqual(["hel", "hel", "hel"]);
    const hubs = (await (await SELF.fetch(`${BASE}/admin/hubs`, { headers: ADMIN })).json()) as { capacity: number; hubs: { hub: string; nodes: number }[] };
    expect(hubs.capacity).toBe(3);
    expect(hubs.hubs.filter((h) => h.hub.startsWith("hel") || h.hub.startsWith("osl"))).toEqual([
      { region: "hel", cell: 0, hub: "hel", nodes: 3 },
      { region: "osl", cell: 0, hub: "osl", nodes: 1 },
    ]);
    // The kept counts agree with a count of the registry's rows.
    const recount = await runInDurableObject(env.NODE_REGISTRY.getByName("global"), (_instance: NodeRegistry, state) => ({
      kept: state.storage.sql.exec("SELECT region, cell, nodes FROM cells WHERE nodes > 0 ORDER BY region, cell").toArray(),
      counted: state.storage.sql.exec("SELECT region, cell, COUNT(*) AS nodes FROM nodes WHERE status = 'active' GROUP BY region, cell ORDER BY region, cell").toArray(),
    }));
    expect(recount.kept).toEqual(recount.counted);
  });

  it("the liveness clock sweeps a cell-1 hub: a silent node there goes down", async () => {
    for (const id of ["vie-1", "vie-2", "vie-3"]) await enroll({ id, kind: "gpu", region: "vie", gpu: H100, capacity: 8 });
    // Connected without keep-alive pings, so nothing refreshes its liveness but what the test does.
    const node = await connectNode(await enroll({ id: "vie-4", kind: "gpu", region: "vie", gpu: H100, capacity: 8 }), "vie-4", {}, {}, false);
    expect(await hubOf("vie-4")).toBe("vie/1");
    await eventually(async () => expect((await fleet()).find((n) => n.id === "vie-4")?.health).toBe("healthy"));
    const clock = env.LIVENESS_CLOCK.getByName("global");
    // The join signed the cell's hub up with the clock under its own name.
    expect(await runInDurableObject(clock, (_instance: LivenessClock, state) => state.storage.sql.exec<{ name: string }>("SELECT name FROM hubs").toArray().map((r) => r.name))).toContain("vie/1");
    // Age its last frame as if it had been silent for 10 s, then let the clock wake its hub now.
    await silenceNode("vie/1", "vie-4");
    await clock.wakeBy("vie/1", Date.now());
    await eventually(async () => expect((await fleet()).find((n) => n.id === "vie-4")?.health).toBe("down"));
    node.ws.close(1000, "done");
  });

  it("a restarted Directory asks every cell of a region for its live sockets", async () => {
    for (const id of ["prg-1", "prg-2", "prg-3"]) await enroll({ id, kind: "gpu", region: "prg", gpu: H100, capacity: 8 });
    const { node } = await enrollAndConnect("prg-4", "prg");
    expect(await hubOf("prg-4")).toBe("prg/1");
    await eventually(async () => expect((await fleet()).some((n) => n.id === "prg-4")).toBe(true));

    const directory = env.DIRECTORY.getByName("global");
    const epochBefore = await runInDurableObject(directory, (instance: Directory) => instance.snapshotSince(null, 0).epoch);
    await evictDurableObject(directory);
    // A new epoch, and the cell-1 node back in it: the hub's name was remembered, not just its region.
    await eventually(async () => {
      const answer = await runInDurableObject(directory, (instance: Directory) => instance.snapshotSince(null, 0));
      expect(answer.epoch).not.toBe(epochBefore);
      expect(answer.kind === "full" ? answer.nodes.map((n) => n.id) : []).toContain("prg-4");
    });
    await eventually(async () => expect((await fleet()).find((n) => n.id === "prg-4")).toMatchObject({ region: "prg", healthy: true }));
    node.ws.close(1000, "done");
  });

  it("a Directory from before cells keeps its regions as the names of their cell-0 hubs", async () => {
    const stub = env.DIRECTORY.getByName(`cells-migration-${crypto.randomUUID()}`);
    await runInDurableObject(stub, (_instance: Directory, state) => {
      state.storage.sql.exec("CREATE TABLE regions (region TEXT PRIMARY KEY)");
      state.storage.sql.exec("INSERT INTO regions (region) VALUES ('mad'), ('lis')");
    });
    await evictDurableObject(stub);
    const tables = await runInDurableObject(stub, (_instance: Directory, state) => ({
      hubs: state.storage.sql.exec<{ name: string }>("SELECT name FROM hubs ORDER BY name").toArray().map((row) => row.name),
      regions: state.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'regions'").toArray().length,
    }));
    expect(tables).toEqual({ hubs: ["lis", "mad"], regions: 0 });
  });

  it("a hub refuses a socket meant for another cell", async () => {
    await enroll({ id: "ber-1", kind: "gpu", region: "ber", gpu: H100, capacity: 8 });
    const claims = CredentialClaimsSchema.parse({ v: 1, id: "ber-1", kind: "gpu", region: "ber", gpu: H100, capacity: 8, iat: 0, exp: 4_000_000_000, jti: "test-jti-0001" });
    const headers = new Headers({ upgrade: "websocket" });
    writeTicket(headers, claims, 0, "gateway.test", null);
    const res = await env.REGION_HUB.getByName("ber/1").fetch(new Request("https://hub.internal/connect", { headers }));
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/belongs to hub ber, not ber\/1/);
  });
});
