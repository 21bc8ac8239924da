import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../src/index";
import { BASE, CLIENT_KEY, TOKYO_HEADERS, eventually, joinNode, routeBody } from "./helpers";

/**
 * The production location path: request.cf only (no dev headers count), and it fails closed.
 * Each case sets cf the way Cloudflare can deliver it, including without coordinates.
 */
const production = { ...env, DEV_TRUST_CLIENT_GEO: undefined };

async function routeWithCf(cf: Record<string, string>, headers: Record<string, string> = {}) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${BASE}/route`, { headers: { ...CLIENT_KEY, ...headers }, cf }), production, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: (await res.json()) as { error?: { code: string; rule?: string }; node: { id: string } | null; client: Record<string, unknown> } };
}

describe("client location from request.cf fails closed", () => {
  beforeAll(async () => {
    await joinNode("waw-loc-h100", "waw");
    await joinNode("waw-loc-hot", "waw", { kind: "hotspot" });
    await joinNode("dxb-loc-hot", "dxb", { kind: "hotspot" });
    await eventually(async () => expect(await routeBody({ ...TOKYO_HEADERS, "x-meridian-kind": "hotspot" })).toMatchObject({ fleetSize: expect.any(Number) }));
  });

  it("refuses an embargoed country that comes without coordinates (it is never dropped)", async () => {
    const { status, body } = await routeWithCf({ country: "IR" }, { "x-meridian-kind": "hotspot" });
    expect(status).toBe(451);
    expect(body.error).toMatchObject({ code: "blocked_by_policy", rule: "embargo-clients" });
    expect(body.client).toMatchObject({ country: "IR", source: "cf" });
  });

  it("refuses a controlled GPU to a GPU-restricted country without coordinates, and serves it a hotspot", async () => {
    const gpu = await routeWithCf({ country: "CN" }, { "x-meridian-gpu": "h100" });
    expect(gpu.status).toBe(451);
    expect(gpu.body.error).toMatchObject({ code: "blocked_by_policy", rule: "advanced-gpu-d5" });
    const hotspot = await routeWithCf({ country: "CN" }, { "x-meridian-kind": "hotspot" });
    expect(hotspot.status).toBe(200);
  });

  it("takes Sevastopol's coordinates as Sevastopol whatever country geo-IP reports", async () => {
    const { status, body } = await routeWithCf({ country: "RU", latitude: "44.6166", longitude: "33.5254" }, { "x-meridian-kind": "hotspot" });
    expect(status).toBe(451);
    expect(body.error).toMatchObject({ code: "blocked_by_policy", rule: "embargo-client-regions" });
    expect(body.client).toMatchObject({ country: "UA", subdivision: "UA-40", territory: "sevastopol" });
  });

  it("refuses Crimea geolocated as RU by subdivision alone", async () => {
    const { status, body } = await routeWithCf({ country: "RU", regionCode: "CR" }, { "x-meridian-kind": "hotspot" });
    expect(status).toBe(451);
    expect(body.error).toMatchObject({ rule: "embargo-client-regions" });
  });

  it("judges Tor (T1) and an unknown country by explicit rules: no controlled GPUs, hotspots allowed", async () => {
    for (const country of ["T1", "XX"]) {
      const gpu = await routeWithCf({ country }, { "x-meridian-gpu": "h100" });
      expect(gpu.status).toBe(451);
      expect(gpu.body.error).toMatchObject({ rule: "advanced-gpu-unknown-client" });
      expect((await routeWithCf({ country }, { "x-meridian-kind": "hotspot" })).status).toBe(200);
    }
    // No cf at all (a request that did not come through Cloudflare) is an unknown country too.
    const ctx = createExecutionContext();
    const res = await worker.fetch(new Request(`${BASE}/route`, { headers: { ...CLIENT_KEY, "x-meridian-gpu": "h100" } }), production, ctx);
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(451);
  });

  it("serves Kyiv and ranks a Polish client without coordinates from Poland's centroid", async () => {
    expect((await routeWithCf({ country: "UA", latitude: "50.45", longitude: "30.52", regionCode: "30" }, { "x-meridian-kind": "hotspot" })).status).toBe(200);
    const { status, body } = await routeWithCf({ country: "PL" }, { "x-meridian-gpu": "h100" });
    expect(status).toBe(200);
    expect(body.node?.id).toBe("waw-loc-h100");
  });
});
