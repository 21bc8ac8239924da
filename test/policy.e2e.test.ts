/**
 * Export control and residency through the real local gateway (wrangler dev) with a
 * simulated fleet in every region, as a client and a policy admin would see it.
 */
import { silentLogger, startSimulator, type SimulatorHandle } from "@meridian/node-agent";
import { getRegion } from "@meridian/regions";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import baseline from "../infra/policies/baseline.json";
import { ensureDevVars, freePort, startGateway, type LocalGateway } from "../scripts/dev-gateway";
import { createTenantKey } from "./support/tenants";

let gateway: LocalGateway;
let fleet: SimulatorHandle;
let stateDir: string;
let admin: Record<string, string>;

const client = (lat: number, lon: number, country: string, subdivision?: string) => ({
  "x-client-lat": String(lat),
  "x-client-lon": String(lon),
  "x-client-country": country,
  ...(subdivision ? { "x-client-subdivision": subdivision } : {}),
});
const TOKYO = client(35.68, 139.76, "JP");
/** This file's tenant key (test/support/tenants.ts), set in beforeAll. */
let clientAuth: Record<string, string> = {};
const whoami = (headers: Record<string, string>) => fetch(`${gateway.url}/v1/whoami`, { headers: { ...clientAuth, ...headers } });
const EU_EEA = new Set(baseline.groups.countries["eu-eea"].members);

beforeAll(async () => {
  const { secrets } = ensureDevVars();
  admin = { authorization: `Bearer ${secrets.ADMIN_TOKEN}` };
  stateDir = mkdtempSync(join(tmpdir(), "meridian-policy-e2e-"));
  gateway = await startGateway({ port: await freePort(), persistTo: stateDir, output: "ignore" });
  clientAuth = (await createTenantKey(gateway.url, secrets.ADMIN_TOKEN, { id: "e2e-policy" })).auth;
  fleet = await startSimulator({ gatewayUrl: gateway.url, adminToken: secrets.ADMIN_TOKEN, nodes: 300, seed: 3, prefix: "pol", logger: silentLogger });
  // Wait until the gateway's snapshot holds the whole fleet.
  const waitFrom = Date.now();
  const deadline = waitFrom + 60_000;
  for (;;) {
    const body = (await (await fetch(`${gateway.url}/route`, { headers: { ...clientAuth, ...TOKYO } })).json()) as { fleetSize: number };
    if (body.fleetSize === 300) {
      console.log(`[policy-e2e] whole fleet visible ${Date.now() - waitFrom} ms after the simulator started`);
      break;
    }
    if (Date.now() > deadline) throw new Error(`fleet not visible: ${body.fleetSize}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  await fleet?.close({ drain: false });
  await gateway?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("region policy end to end", () => {
  it("refuses an Iranian client with 451 and the deciding rule", async () => {
    const res = await whoami(client(35.69, 51.39, "IR"));
    expect(res.status).toBe(451);
    // The nearest node is in Tehran itself, so the node embargo decides too.
    expect(await res.json()).toEqual({
      error: { code: "blocked_by_policy", message: expect.stringContaining("Iran"), rule: "embargo-clients", rules: expect.arrayContaining(["embargo-clients"]), policyVersion: 1, requestId: res.headers.get("x-request-id"), tenant: { id: "e2e-policy", hqCountry: "US" }, type: "permission_error", param: null },
    });
  });

  it("refuses a client in Crimea (UA-43) while serving Kyiv", async () => {
    expect((await whoami(client(44.95, 34.1, "UA", "UA-43"))).status).toBe(451);
    const kyiv = await whoami(client(50.45, 30.52, "UA", "UA-30"));
    expect(kyiv.status).toBe(200);
    expect(["sip", "dok"]).not.toContain(kyiv.headers.get("x-meridian-region"));
  });

  it("never serves a Chinese client an H100, and serves it a hotspot", async () => {
    const h100 = await whoami({ ...client(31.23, 121.47, "CN"), "x-meridian-gpu": "h100" });
    expect(h100.status).toBe(451);
    expect(((await h100.json()) as { error: { rule: string } }).error.rule).toBe("advanced-gpu-d5");
    const hotspot = await whoami({ ...client(31.23, 121.47, "CN"), "x-meridian-kind": "hotspot" });
    expect(hotspot.status).toBe(200);
  });

  it("keeps EU-residency traffic from Lisbon on EU/EEA nodes for every node kind", async () => {
    for (const kind of ["hotspot", "gpu"]) {
      const res = await whoami({ ...client(38.72, -9.14, "PT"), "x-meridian-kind": kind, "x-meridian-residency": "eu" });
      expect(res.status).toBe(200);
      const country = getRegion(res.headers.get("x-meridian-region") ?? "")?.country ?? "?";
      expect(EU_EEA.has(country)).toBe(true);
    }
  });

  it("stops routing to a region soon after an admin publishes a deny for it (prints the delay; the 1 s goal lives in the benchmark)", async () => {
    const before = await whoami(TOKYO);
    expect(before.headers.get("x-meridian-region")).toBe("nrt");
    const live = await fetch(`${gateway.url}/admin/policy`, { headers: admin });
    const { document } = (await live.json()) as { document: typeof baseline };
    const draft = { ...document, rules: [...document.rules, { id: "deny-nrt", effect: "deny", reason: "datacentre audit", match: { nodeRegion: ["nrt"] } }] };
    const published = await fetch(`${gateway.url}/admin/policy`, {
      method: "PUT",
      headers: { ...admin, "content-type": "application/json", "if-match": live.headers.get("etag") ?? "", "x-meridian-reason": "audit of nrt" },
      body: JSON.stringify(draft),
    });
    expect(published.status).toBe(200);
    const ackAt = performance.now();
    let enforcedAfter = Number.POSITIVE_INFINITY;
    while (performance.now() - ackAt < 10_000) {
      const res = await whoami(TOKYO);
      if (res.headers.get("x-meridian-region") !== "nrt") {
        enforcedAfter = performance.now() - ackAt;
        break;
      }
    }
    console.log(`[policy-e2e] deny for nrt enforced ${enforcedAfter.toFixed(0)} ms after the publish acknowledgement`);
    expect(enforcedAfter).toBeLessThan(10_000);
    for (let i = 0; i < 20; i++) expect((await whoami(TOKYO)).headers.get("x-meridian-region")).not.toBe("nrt");
  });
});
