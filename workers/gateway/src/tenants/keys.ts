import { TENANT_KEY_PREFIX } from "@meridian/protocol";

/**
 * Tenant API keys: "mk_" + 40 base64url characters (240 random bits). The first 8 after the
 * prefix are shown to people (key lists, audit); the key itself is shown once, at creation,
 * and stored only as its SHA-256.
 */
const KEY_RANDOM_BYTES = 30;
const VISIBLE_CHARS = 8;

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function generateTenantKey(): string {
  return `${TENANT_KEY_PREFIX}${base64url(crypto.getRandomValues(new Uint8Array(KEY_RANDOM_BYTES)))}`;
}

/** What people see of a key: "mk_AbCdEfGh…". */
export function keyPrefix(key: string): string {
  return `${key.slice(0, TENANT_KEY_PREFIX.length + VISIBLE_CHARS)}…`;
}

/**
 * Digests of keys this isolate has seen, so a client's every request does not pay a SHA-256
 * (tens of µs in workerd). Isolate memory only, bounded; what is stored and compared stays
 * the digest.
 */
const recentDigests = new Map<string, string>();
const RECENT_DIGESTS = 10_000;

/** SHA-256 of a key, lowercase hex: the only form in which keys are stored or cached. */
export async function hashTenantKey(key: string): Promise<string> {
  const known = recentDigests.get(key);
  if (known !== undefined) return known;
  const hex = await sha256Hex(key);
  if (recentDigests.size >= RECENT_DIGESTS) recentDigests.clear();
  recentDigests.set(key, hex);
  return hex;
}

async function sha256Hex(key: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(key)));
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/**
 * Constant-time equality of two digests (false for unequal lengths, which digests never are):
 * every character is compared whatever the first difference, so the time says nothing of where
 * they differ. Plain code, so the benchmark measures the same function outside workerd.
 */
export function sameHash(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
