import { afterEach, describe, expect, it } from "vitest";
import { EnrollmentError, adminNodesUrl, enrollNode, joinRefusalHint, joinWithToken } from "../src/enroll";
import { FakeGateway, type FakeGatewayOptions } from "./fake-gateway";

const gatewaysToClose: FakeGateway[] = [];
afterEach(async () => {
  for (const gateway of gatewaysToClose.splice(0)) await gateway.close();
});

async function startGateway(options: FakeGatewayOptions = {}): Promise<FakeGateway> {
  const gateway = await FakeGateway.start(options);
  gatewaysToClose.push(gateway);
  return gateway;
}

const enrollment = {
  id: "nrt-gpu-1",
  kind: "gpu" as const,
  region: "nrt",
  gpu: { class: "h100" as const, vramGb: 80, count: 8 },
  capacity: 16,
};

describe("enrollNode", () => {
  it("returns the credential from a 201 answer", async () => {
    const gateway = await startGateway();
    expect(await enrollNode(gateway.url, "admin-secret", enrollment)).toBe("cred-nrt-gpu-1");
    expect(gateway.enrollments).toEqual([enrollment]);
  });

  it("reports the error code and message of a refusal and does not retry 4xx", async () => {
    const gateway = await startGateway();
    const failure = enrollNode(gateway.url, "wrong-token", enrollment);
    await expect(failure).rejects.toBeInstanceOf(EnrollmentError);
    await expect(failure).rejects.toThrow(/HTTP 401 unauthorized: bad admin token/);
    await expect(failure).rejects.toMatchObject({ status: 401, code: "unauthorized" });
    expect(gateway.enrollRequests).toBe(1);
  });

  it("retries a 503 and then succeeds", async () => {
    const gateway = await startGateway({ failEnrollments: { status: 503, times: 1 } });
    expect(await enrollNode(gateway.url, "admin-secret", enrollment)).toBe("cred-nrt-gpu-1");
    expect(gateway.enrollRequests).toBe(2);
  });

  it("rejects an invalid enrollment before calling the gateway", async () => {
    const gateway = await startGateway();
    await expect(enrollNode(gateway.url, "admin-secret", { ...enrollment, region: "atlantis" })).rejects.toThrow(
      /region/,
    );
    await expect(enrollNode(gateway.url, "admin-secret", { ...enrollment, kind: "hotspot" })).rejects.toThrow(/gpu/);
    expect(gateway.enrollRequests).toBe(0);
  });

  it("builds the admin URL under the gateway's base path", () => {
    expect(adminNodesUrl("http://127.0.0.1:8787")).toBe("http://127.0.0.1:8787/admin/nodes");
    expect(adminNodesUrl("https://edge.example.com/meridian/")).toBe("https://edge.example.com/meridian/admin/nodes");
  });
});

describe("joinWithToken", () => {
  const join = { id: "lis-hotspot-1", kind: "hotspot" as const, region: "lis", capacity: 16, maxMbps: 300, endpoint: "http://127.0.0.1:9" };

  it("enrolls with the join token alone and sends the enrollment fields and endpoint", async () => {
    const gateway = await startGateway({ joinTokens: { "join-abc": { uses: 1 } } });
    expect(await joinWithToken(gateway.url, "join-abc", join)).toBe("cred-lis-hotspot-1");
    expect(gateway.joins).toEqual([{ token: "join-abc", body: join }]);
  });

  it("refuses a used token (401), a node outside the token's scope (403) and a known id (409), without retrying", async () => {
    const gateway = await startGateway({ joinTokens: { once: { uses: 1 }, "lis-only": { uses: 5, region: "lis" } } });
    await joinWithToken(gateway.url, "once", join);
    await expect(joinWithToken(gateway.url, "once", { ...join, id: "lis-hotspot-2" })).rejects.toMatchObject({ status: 401, code: "invalid_join_token" });
    await expect(joinWithToken(gateway.url, "lis-only", { ...join, id: "nrt-hotspot-1", region: "nrt" })).rejects.toThrow(/HTTP 403 outside_join_scope: .*check --region/);
    await expect(joinWithToken(gateway.url, "lis-only", join)).rejects.toThrow(/HTTP 409 node_exists: .*already enrolled/);
    expect(gateway.joins).toHaveLength(4);
  });

  it("explains a refused token in words an operator can act on", () => {
    expect(joinRefusalHint(401)).toMatch(/ask the fleet admin for a new one/);
    expect(joinRefusalHint(500)).toBe("");
  });
});
