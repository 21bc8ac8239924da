import { importRequestKey, verifyRequestSignature } from "@meridian/protocol";
import { SELF, env } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { requestKeyFor } from "../src/request-keys";
import { BASE, CLIENT_KEY, TOKYO_HEADERS, eventually, joinNode, routeBody } from "./helpers";

/** What a node receives: nothing of the client's but the request, and the gateway's signature. */
describe("the trust boundary between clients and nodes", () => {
  let credentialId = "";

  beforeAll(async () => {
    const node = await joinNode("kix-trust", "kix");
    void node;
    await eventually(async () => expect((await routeBody({ ...TOKYO_HEADERS, "x-meridian-kind": "gpu" })).node).toMatchObject({ id: "kix-trust" }));
    const fleet = (await (await SELF.fetch(`${BASE}/admin/fleet`, { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` } })).json()) as { nodes: { id: string }[] };
    expect(fleet.nodes.some((n) => n.id === "kix-trust")).toBe(true);
  });

  afterEach(() => vi.restoreAllMocks());

  function captureForwarded(respond: () => Response = () => new Response("ok")) {
    const seen: Request[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      seen.push(new Request(input, init));
      return respond();
    });
    return seen;
  }

  const clientHeaders = {
    ...TOKYO_HEADERS,
    "x-meridian-kind": "gpu",
    // The tenant key: consumed by the gateway, never forwarded.
    authorization: CLIENT_KEY.authorization,
    cookie: "session=abc",
    "proxy-authorization": "Basic eHh4",
    "x-forwarded-for": "203.0.113.9",
    "x-real-ip": "203.0.113.9",
    forwarded: "for=203.0.113.9",
    "true-client-ip": "203.0.113.9",
    "cf-connecting-ip": "203.0.113.9",
    "content-type": "application/json",
    "x-custom-app-header": "kept",
  };

  it("strips the client's keys, cookies and forwarding headers, keeps the request's own headers", async () => {
    const seen = captureForwarded();
    const res = await SELF.fetch(`${BASE}/v1/chat/completions`, { method: "POST", headers: clientHeaders, body: "{}" });
    expect(res.status).toBe(200);
    const forwarded = seen[0];
    expect(forwarded).toBeDefined();
    const names = [...(forwarded?.headers.keys() ?? [])];
    for (const name of ["authorization", "cookie", "proxy-authorization", "x-forwarded-for", "x-real-ip", "forwarded", "true-client-ip", "cf-connecting-ip", "x-client-lat", "x-client-country", "x-meridian-kind"]) {
      expect(names).not.toContain(name);
    }
    expect(forwarded?.headers.get("content-type")).toBe("application/json");
    expect(forwarded?.headers.get("x-custom-app-header")).toBe("kept");
    expect(forwarded?.headers.get("x-meridian-client-country")).toBeNull();
    expect(JSON.stringify([...(forwarded?.headers.values() ?? [])])).not.toContain("203.0.113.9");
  });

  it("signs every forwarded request for the node it goes to, with the key the node got at welcome", async () => {
    const seen = captureForwarded();
    // A proxied path (GET /v1/models is answered by the gateway itself and never forwarded).
    const res = await SELF.fetch(`${BASE}/v1/whoami?limit=2`, { headers: clientHeaders });
    expect(res.status).toBe(200);
    const forwarded = seen[0];
    const fleet = (await (await SELF.fetch(`${BASE}/route`, { headers: { ...TOKYO_HEADERS, "x-meridian-kind": "gpu" } })).json()) as { node: { id: string } };
    expect(fleet.node.id).toBe("kix-trust");
    const secret = env.NODE_CREDENTIAL_KEY ?? "";
    // The welcome carried exactly this key: the hub and every isolate derive it the same way.
    const snapshot = (await env.DIRECTORY.getByName("global").snapshotSince(null, 0)) as { kind: string; nodes?: { id: string; credentialId?: string }[] };
    credentialId = snapshot.nodes?.find((n) => n.id === "kix-trust")?.credentialId ?? "";
    expect(credentialId.length).toBeGreaterThan(8);
    const key = await importRequestKey(await requestKeyFor(secret, "kix-trust", credentialId));
    const headers = { signature: forwarded?.headers.get("x-meridian-signature"), timestamp: forwarded?.headers.get("x-meridian-timestamp") };
    expect(await verifyRequestSignature(key, "GET", "/v1/whoami?limit=2", "kix-trust", headers, Date.now())).toEqual({ ok: true });
    // Signed for this node and this request only.
    expect(await verifyRequestSignature(key, "GET", "/v1/whoami?limit=3", "kix-trust", headers, Date.now())).toMatchObject({ ok: false });
    expect(await verifyRequestSignature(key, "GET", "/v1/whoami?limit=2", "kix-other", headers, Date.now())).toMatchObject({ ok: false });
  });

  it("answers 502 without naming a node or a runtime error, with a request id that the log line carries", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => {
      throw new Error("connect ECONNREFUSED 10.1.2.3:8443 internal-detail");
    });
    const logs: string[] = [];
    vi.spyOn(console, "warn").mockImplementation((line: unknown) => void logs.push(String(line)));
    const res = await SELF.fetch(`${BASE}/v1/whoami`, { headers: clientHeaders });
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(text).not.toContain("kix-trust");
    expect(text).not.toContain("ECONNREFUSED");
    const body = JSON.parse(text) as { error: { code: string; requestId: string } };
    expect(body.error.code).toBe("upstream_failed");
    expect(body.error.requestId).toBe(res.headers.get("x-request-id"));
    expect(logs.some((line) => line.includes(body.error.requestId) && line.includes("ECONNREFUSED"))).toBe(true);
  });

  it("uses Cloudflare's ray id as the request id where there is one", async () => {
    const res = await SELF.fetch(`${BASE}/route`, { headers: { ...TOKYO_HEADERS, "cf-ray": "8f00aa11bb22cc33-NRT", "x-meridian-gpu": "mi300x" } });
    expect(res.headers.get("x-request-id")).toBe("8f00aa11bb22cc33-NRT");
    expect(((await res.json()) as { error: { requestId: string } }).error.requestId).toBe("8f00aa11bb22cc33-NRT");
  });

  it("answers 508 to a request that carries the gateway's own forwarding mark (a node pointing back at the gateway)", async () => {
    const seen = captureForwarded();
    await SELF.fetch(`${BASE}/v1/whoami`, { headers: clientHeaders });
    const mark = seen[0]?.headers.get("x-meridian-loop");
    expect(mark).toBeTruthy();
    vi.restoreAllMocks();
    const looped = await SELF.fetch(`${BASE}/v1/whoami`, { headers: { ...clientHeaders, "x-meridian-loop": mark ?? "" } });
    expect(looped.status).toBe(508);
    expect(((await looped.json()) as { error: { code: string } }).error.code).toBe("loop_detected");
  });
});
