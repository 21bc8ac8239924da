import { describe, expect, it } from "vitest";
import { endpointProblem, type EndpointRules } from "../src/endpoint";

/** Found by the gateway's fuzzer (workers/gateway/test/fuzz.test.ts): the URL parser cleans these up, the stored string kept them. */
describe("endpoint rules refuse control characters, bidi overrides and lone surrogates", () => {
  const loopback: EndpointRules = { mode: "loopback", gatewayHost: "gateway.test", extraHostSuffixes: [".test"] };
  const production: EndpointRules = { mode: "production", gatewayHost: "gateway.example.com" };
  it.each([
    ["a tab inside the host", "http://fz-enrol\tled.test/v1", "https://gpu-1.exam\tple.com/v1"],
    ["ESC in the path", "http://fz.test/\u001b[31m", "https://gpu-1.example.com/\u001b[31m"],
    ["BEL", "http://127.0.0.1:9/\u0007", "https://gpu-1.example.com/\u0007"],
    ["a bidi override", "http://fz.test/a\u202eb", "https://gpu-1.example.com/a\u202eb"],
    ["a lone surrogate", "http://fz.test/\ud800", "https://gpu-1.example.com/\ud800"],
    ["a C1 control", "http://fz.test/\u0085", "https://gpu-1.example.com/\u0085"],
  ])("%s", (_what, local, public_) => {
    expect(endpointProblem(local, loopback)).toMatch(/control characters/);
    expect(endpointProblem(public_, production)).toMatch(/control characters/);
  });

  it("still accepts the clean endpoints", () => {
    expect(endpointProblem("http://fz.test/n/x", loopback)).toBeNull();
    expect(endpointProblem("https://gpu-1.example.com/v1", production)).toBeNull();
  });
});
