import { describe, expect, it } from "vitest";
import { endpointProblem } from "../src/endpoint";

const production = { mode: "production" as const, gatewayHost: "gateway.example.com" };
const local = { mode: "loopback" as const, gatewayHost: "127.0.0.1:8787" };

describe("node endpoint rules", () => {
  it("refuses what an attacker with one credential tried, in production", () => {
    for (const raw of [
      "http://127.0.0.1:22",
      "http://169.254.169.254",
      "https://169.254.169.254/latest",
      "http://2130706433:9/",
      "https://2130706433:9/",
      "https://0x7f.0.0.1/",
      "https://[::1]/",
      "https://user:pass@node.example.com",
      "https://gateway.example.com/v1",
      "https://localhost:8443",
      "http://node.example.com",
      "https://node.example.com/?x=1",
      "https://intranet/",
      "not a url",
    ]) {
      expect(endpointProblem(raw, production), raw).not.toBeNull();
    }
    expect(endpointProblem("https://gpu-7.operator.example.net/base", production)).toBeNull();
  });

  it("takes loopback only in local runs, and never the gateway's own address", () => {
    expect(endpointProblem("http://127.0.0.1:9100", local)).toBeNull();
    expect(endpointProblem("http://localhost:9100/n/a", local)).toBeNull();
    expect(endpointProblem("http://[::1]:9100", local)).toBeNull();
    expect(endpointProblem("http://127.0.0.1:8787", local)).toMatch(/gateway/);
    expect(endpointProblem("http://10.0.0.5:9100", local)).toMatch(/loopback/);
    expect(endpointProblem("http://169.254.169.254", local)).toMatch(/loopback/);
    expect(endpointProblem("http://u:p@127.0.0.1:9100", local)).toMatch(/user/);
    expect(endpointProblem("http://node-a.test", { ...local, extraHostSuffixes: [".test"] })).toBeNull();
  });
});
