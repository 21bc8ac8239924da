/**
 * The console's session cookie: role, expiry, a CSRF token and a fingerprint of the token
 * that signed in, HMAC-signed with a key derived from ADMIN_TOKEN. The bearer token itself is
 * never stored: after sign-in the browser holds only this cookie (HttpOnly, SameSite=Strict).
 */
import type { Role } from "../roles";

export const SESSION_COOKIE = "meridian_console";
/** Header a cookie-authenticated write must carry, equal to the session's CSRF token. */
export const CSRF_HEADER = "x-meridian-csrf";
export const SESSION_TTL_MS = 8 * 3600_000;

export interface Session {
  role: Role;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  csrf: string;
  /** First 16 bytes of SHA-256 of the role's token at sign-in: rotating the token ends the session. */
  tokenPrint: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}

/** One derived key per isolate and admin token (HKDF, so the cookie key is never the token). */
let cachedKey: { secret: string; key: Promise<CryptoKey> } | null = null;
function sessionKey(adminToken: string): Promise<CryptoKey> {
  if (cachedKey?.secret !== adminToken) {
    const key = crypto.subtle
      .importKey("raw", encoder.encode(adminToken), "HKDF", false, ["deriveKey"])
      .then((material) =>
        crypto.subtle.deriveKey(
          { name: "HKDF", hash: "SHA-256", salt: encoder.encode("meridian-console"), info: encoder.encode("session-cookie v1") },
          material,
          { name: "HMAC", hash: "SHA-256", length: 256 },
          false,
          ["sign", "verify"],
        ),
      );
    cachedKey = { secret: adminToken, key };
  }
  return cachedKey.key;
}

export async function tokenPrint(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(token));
  return base64url(new Uint8Array(digest).slice(0, 16));
}

export function newCsrfToken(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(24)));
}

export async function signSession(adminToken: string, session: Session): Promise<string> {
  const payload = base64url(encoder.encode(JSON.stringify({ r: session.role, e: session.expiresAt, c: session.csrf, t: session.tokenPrint })));
  const signature = await crypto.subtle.sign("HMAC", await sessionKey(adminToken), encoder.encode(payload));
  return `${payload}.${base64url(new Uint8Array(signature))}`;
}

const ROLES: readonly string[] = ["viewer", "editor", "admin"];
const isRole = (value: unknown): value is Role => typeof value === "string" && ROLES.includes(value);

/** The session in a cookie value, or null when it is malformed, forged or expired. */
export async function verifySession(adminToken: string, value: string, now: number): Promise<Session | null> {
  const [payload, signature, extra] = value.split(".");
  if (payload === undefined || signature === undefined || extra !== undefined) return null;
  const signatureBytes = fromBase64url(signature);
  const payloadBytes = fromBase64url(payload);
  if (signatureBytes === null || payloadBytes === null) return null;
  // crypto.subtle.verify compares in constant time.
  if (!(await crypto.subtle.verify("HMAC", await sessionKey(adminToken), signatureBytes, encoder.encode(payload)))) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(payloadBytes));
  } catch {
    return null;
  }
  if (typeof parsed !== "object" || parsed === null) return null;
  const { r, e, c, t } = parsed as Record<string, unknown>;
  if (!isRole(r) || typeof e !== "number" || typeof c !== "string" || typeof t !== "string") return null;
  if (e <= now) return null;
  return { role: r, expiresAt: e, csrf: c, tokenPrint: t };
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | null {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** Secure everywhere except plain http on the loopback address (local runs). */
export function cookieIsSecure(requestUrl: string): boolean {
  const url = new URL(requestUrl);
  return !(url.protocol === "http:" && (url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]"));
}

export function sessionCookie(value: string, maxAgeS: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure ? "; Secure" : ""}`;
}
