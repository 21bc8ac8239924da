/**
 * Signed forwarded requests: every request the gateway sends to a node carries an HMAC
 * over what routing decided (method, path with query, when, which node), so a node can
 * refuse traffic that did not come through the policy, the limits and the ledgers.
 *
 *   canonical = "v1\n" + METHOD + "\n" + path?query + "\n" + timestampMs + "\n" + nodeId
 *   x-meridian-signature: v1=<base64url(HMAC-SHA256(requestKey, canonical))>
 *   x-meridian-timestamp: <unix milliseconds>
 *
 * The per-node request key (32 bytes, base64url) reaches the node in its welcome frame.
 * Pure: WebCrypto only, the same in workerd and Node.
 */

export const SIGNATURE_HEADER = "x-meridian-signature";
export const SIGNATURE_TIMESTAMP_HEADER = "x-meridian-timestamp";
/** A signed request older (or newer) than this is refused as stale. */
export const MAX_SIGNATURE_SKEW_MS = 30_000;
const VERSION = "v1";

const encoder = new TextEncoder();
/** WebCrypto's key type, named the same way under Node's and Workers' type libraries. */
export type RequestKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

export function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64Url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  } catch {
    // Impossible lengths (4n+1) are not base64 at all.
    return null;
  }
}

export function canonicalRequest(method: string, pathAndQuery: string, timestampMs: number, nodeId: string): string {
  return `${VERSION}\n${method.toUpperCase()}\n${pathAndQuery}\n${timestampMs}\n${nodeId}`;
}

/** Imports a base64url request key for signing and verifying. */
export async function importRequestKey(requestKey: string): Promise<RequestKey> {
  const raw = fromBase64Url(requestKey);
  if (raw === null || raw.byteLength < 32) throw new Error("request key: 32 bytes of base64url expected");
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

/** The two headers to add to a forwarded request. */
export async function signRequest(key: RequestKey, method: string, pathAndQuery: string, nodeId: string, nowMs: number): Promise<Record<string, string>> {
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(canonicalRequest(method, pathAndQuery, nowMs, nodeId)));
  return { [SIGNATURE_HEADER]: `${VERSION}=${toBase64Url(new Uint8Array(mac))}`, [SIGNATURE_TIMESTAMP_HEADER]: String(nowMs) };
}

export type SignatureCheck = { ok: true } | { ok: false; reason: "missing" | "malformed" | "stale" | "mismatch" };

/** Checks a request's signature headers; constant-time through crypto.subtle.verify. */
export async function verifyRequestSignature(
  key: RequestKey,
  method: string,
  pathAndQuery: string,
  nodeId: string,
  headers: { signature: string | null | undefined; timestamp: string | null | undefined },
  nowMs: number,
): Promise<SignatureCheck> {
  if (!headers.signature || !headers.timestamp) return { ok: false, reason: "missing" };
  if (!/^\d{1,16}$/.test(headers.timestamp) || !headers.signature.startsWith(`${VERSION}=`)) return { ok: false, reason: "malformed" };
  const timestamp = Number(headers.timestamp);
  if (Math.abs(nowMs - timestamp) > MAX_SIGNATURE_SKEW_MS) return { ok: false, reason: "stale" };
  const mac = fromBase64Url(headers.signature.slice(VERSION.length + 1));
  if (mac === null || mac.byteLength !== 32) return { ok: false, reason: "malformed" };
  const valid = await crypto.subtle.verify("HMAC", key, mac, encoder.encode(canonicalRequest(method, pathAndQuery, timestamp, nodeId)));
  return valid ? { ok: true } : { ok: false, reason: "mismatch" };
}
