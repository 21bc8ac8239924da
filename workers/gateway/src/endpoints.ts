import type { EndpointRules } from "@meridian/protocol";

/**
 * The endpoint rules in force: production unless DEV_NODE_ENDPOINTS (local runs only) says
 * "loopback", optionally followed by extra host suffixes for tests, e.g. "loopback,.test".
 */
export function endpointRules(env: Env, gatewayHost: string | null): EndpointRules {
  const dev = (env.DEV_NODE_ENDPOINTS ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (dev[0] !== "loopback") return { mode: "production", gatewayHost };
  return { mode: "loopback", gatewayHost, extraHostSuffixes: dev.slice(1) };
}
