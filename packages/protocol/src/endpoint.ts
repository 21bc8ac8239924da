import { UNSAFE_TEXT_MESSAGE, isSafeText } from "./text";

/**
 * Which node endpoints the gateway will send client traffic to. A node's endpoint is
 * chosen by a stranger, so it is checked at enrollment and at every hello:
 * - production: https, a DNS hostname (no IP literal in any spelling, no localhost), no
 *   userinfo, no query or fragment, and not the gateway's own host;
 * - local runs: http(s) on loopback only (127.0.0.0/8, ::1, localhost), and not the
 *   gateway's own host and port; `extraHostSuffixes` admits test-only names such as ".test".
 */
export interface EndpointRules {
  mode: "production" | "loopback";
  /** host[:port] the gateway is reached at: an endpoint pointing there would loop. */
  gatewayHost: string | null;
  extraHostSuffixes?: readonly string[];
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Why this endpoint is refused, or null when it is acceptable. Pure and total. */
export function endpointProblem(raw: string, rules: EndpointRules): string | null {
  // The URL parser drops tabs and newlines and percent-encodes other controls, but the raw
  // string is what gets stored and shown (fleet, console, logs): it must be clean itself.
  if (!isSafeText(raw)) return UNSAFE_TEXT_MESSAGE;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "not a URL";
  }
  if (url.username !== "" || url.password !== "") return "must not carry a user name or password";
  if (url.search !== "" || url.hash !== "") return "must not carry a query or fragment (it is a base URL)";
  // The URL parser has already normalised 2130706433, 0x7f.1 and friends to dotted IPv4.
  const host = url.hostname.toLowerCase();
  const isIp = IPV4.test(host) || host.startsWith("[");
  const isLoopback = host === "localhost" || host === "[::1]" || (IPV4.test(host) && host.startsWith("127."));
  if (rules.gatewayHost !== null && url.host.toLowerCase() === rules.gatewayHost.toLowerCase()) return "points at the gateway itself";
  if (rules.mode === "loopback") {
    if (url.protocol !== "http:" && url.protocol !== "https:") return "must be http or https";
    if (isLoopback) return null;
    if ((rules.extraHostSuffixes ?? []).some((suffix) => host.endsWith(suffix))) return null;
    return "local runs accept loopback endpoints only (127.0.0.1, ::1, localhost)";
  }
  if (url.protocol !== "https:") return "must be https";
  if (isIp) return "must be a DNS hostname, not an IP address";
  if (host === "localhost" || host.endsWith(".localhost") || !host.includes(".")) return "must be a public DNS hostname";
  if (rules.gatewayHost !== null && host === rules.gatewayHost.toLowerCase().replace(/:\d+$/, "")) return "points at the gateway itself";
  return null;
}
