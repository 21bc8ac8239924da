import { CredentialClaimsSchema, DEFAULT_HOTSPOT_MBPS, type CredentialClaims, type Enrollment } from "@meridian/protocol";
import { HttpError } from "./errors";

/**
 * Node credentials: base64url(claims JSON) "." base64url(HMAC-SHA256(key, first part)).
 * Self-contained, so a node connect needs no storage lookup; bound to id, kind, region and
 * hardware, so a node cannot claim to be another or to hold better GPUs.
 */
const encoder = new TextEncoder();

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  } catch {
    // Impossible lengths (4n+1) are not base64 at all.
    return null;
  }
}

async function hmacKey(secret: string | undefined): Promise<CryptoKey> {
  if (secret === undefined || secret.length < 32) {
    throw new HttpError(503, "credentials_disabled", "NODE_CREDENTIAL_KEY is not configured (at least 32 characters)");
  }
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

export async function issueCredential(secret: string | undefined, enrollment: Enrollment, nowMs: number): Promise<{ credential: string; claims: CredentialClaims }> {
  const iat = Math.floor(nowMs / 1000);
  const claims: CredentialClaims = {
    v: 1,
    id: enrollment.id,
    kind: enrollment.kind,
    region: enrollment.region,
    ...(enrollment.gpu ? { gpu: enrollment.gpu } : {}),
    capacity: enrollment.capacity,
    ...(enrollment.partner ? { partner: enrollment.partner } : {}),
    ...(enrollment.kind === "hotspot" ? { maxMbps: enrollment.maxMbps ?? DEFAULT_HOTSPOT_MBPS } : {}),
    jti: crypto.randomUUID(),
    iat,
    exp: iat + enrollment.ttlDays * 86_400,
  };
  const body = toBase64Url(encoder.encode(JSON.stringify(claims)));
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(body));
  return { credential: `${body}.${toBase64Url(new Uint8Array(signature))}`, claims };
}

const invalid = () => new HttpError(401, "invalid_credential", "the node credential is malformed or its signature does not verify", {}, { "www-authenticate": "Bearer" });

export async function verifyCredential(secret: string | undefined, credential: string, nowMs: number): Promise<CredentialClaims> {
  const key = await hmacKey(secret);
  const [body, signature, ...rest] = credential.split(".");
  if (body === undefined || signature === undefined || rest.length > 0) throw invalid();
  const signatureBytes = fromBase64Url(signature);
  if (signatureBytes === null) throw invalid();
  // crypto.subtle.verify compares in constant time.
  if (!(await crypto.subtle.verify("HMAC", key, signatureBytes, encoder.encode(body)))) throw invalid();
  const bodyBytes = fromBase64Url(body);
  if (bodyBytes === null) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bodyBytes));
  } catch {
    throw invalid();
  }
  const claims = CredentialClaimsSchema.safeParse(parsed);
  if (!claims.success) throw invalid();
  if (claims.data.exp * 1000 <= nowMs) throw new HttpError(401, "credential_expired", `the node credential expired at ${new Date(claims.data.exp * 1000).toISOString()}`);
  return claims.data;
}
