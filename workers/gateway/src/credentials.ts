import { CredentialClaimsSchema, DEFAULT_HOTSPOT_MBPS, toBase64Url, type CredentialClaims, type Enrollment } from "@meridian/protocol";
import { SignJWT, jwtVerify, errors as joseErrors, type JWTPayload } from "jose";
import { HttpError } from "./errors";

/**
 * Node credentials are JWTs (HS256) with a key id, so the signing key can be rotated with an
 * overlap: NODE_CREDENTIAL_KEY signs, and NODE_CREDENTIAL_KEYS_PREVIOUS (comma-separated)
 * still verifies until the credentials it signed expire or are re-issued. A credential is
 * bound to the node's id, kind, region and hardware, so a node cannot claim to be another
 * or to hold better GPUs; its `jti` is what the registry revokes.
 */
const ISSUER = "meridian";
const AUDIENCE = "meridian-node";
const encoder = new TextEncoder();

interface SigningKey {
  kid: string;
  secret: string;
  key: Uint8Array;
}

export interface CredentialKeys {
  active: SigningKey;
  byKid: ReadonlyMap<string, SigningKey>;
}

let cached: { active: string | undefined; previous: string | undefined; keys: Promise<CredentialKeys> } | null = null;

/** The deployment's credential keys (memoised per isolate; secrets change only on redeploy). */
export function credentialKeys(env: Env): Promise<CredentialKeys> {
  const active = env.NODE_CREDENTIAL_KEY;
  // Every forwarded request asks: the same secrets answer at once, without parsing them again.
  if (cached !== null && cached.active === active && cached.previous === env.NODE_CREDENTIAL_KEYS_PREVIOUS) return cached.keys;
  if (active === undefined || active.length < 32) {
    throw new HttpError(503, "credentials_disabled", "NODE_CREDENTIAL_KEY is not configured (at least 32 characters)");
  }
  const previous = (env.NODE_CREDENTIAL_KEYS_PREVIOUS ?? "").split(",").map((s) => s.trim()).filter((s) => s.length >= 32);
  const keys = loadKeys(active, previous);
  cached = { active, previous: env.NODE_CREDENTIAL_KEYS_PREVIOUS, keys };
  return keys;
}

async function loadKeys(active: string, previous: string[]): Promise<CredentialKeys> {
  const all = await Promise.all([active, ...previous].map(signingKey));
  const [first] = all;
  if (first === undefined) throw new Error("no credential key");
  return { active: first, byKid: new Map(all.map((k) => [k.kid, k])) };
}

/** A key's id: the start of its SHA-256, so operators never have to name keys. */
async function signingKey(secret: string): Promise<SigningKey> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(secret)));
  return { kid: toBase64Url(digest).slice(0, 8), secret, key: encoder.encode(secret) };
}

/** The secret of the key that signed a credential (its jti starts with the key id). */
export function secretForCredential(keys: CredentialKeys, jti: string): string | undefined {
  // A kid is base64url and may itself hold "_" (so may what follows it): match whole "kid_" prefixes.
  for (const [kid, key] of keys.byKid) if (jti.startsWith(`${kid}_`)) return key.secret;
  return undefined;
}

/** Issues a credential for an enrollment the registry accepted. */
export async function issueCredential(keys: CredentialKeys, enrollment: Enrollment, nowMs: number): Promise<{ credential: string; claims: CredentialClaims }> {
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
    // Signed, so a node cannot change its own price (cost steering trusts it) or model bound.
    ...(enrollment.pricePerGpuHour !== undefined ? { pricePerGpuHour: enrollment.pricePerGpuHour } : {}),
    ...(enrollment.models !== undefined ? { models: enrollment.models } : {}),
    // 96 random bits after the key id: unique per credential, and short on the fleet wire.
    jti: `${keys.active.kid}_${toBase64Url(crypto.getRandomValues(new Uint8Array(12)))}`,
    iat,
    exp: iat + enrollment.ttlDays * 86_400,
  };
  const { id, jti, exp, v: _v, iat: _iat, ...node } = claims;
  const credential = await new SignJWT({ node })
    .setProtectedHeader({ alg: "HS256", kid: keys.active.kid, typ: "JWT" })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(id)
    .setJti(jti)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(keys.active.key);
  return { credential, claims };
}

const invalid = () => new HttpError(401, "invalid_credential", "the node credential is malformed or its signature does not verify", {}, { "www-authenticate": "Bearer" });

/** Verifies signature, key id, issuer, audience and expiry; the registry then checks revocation. */
export async function verifyCredential(keys: CredentialKeys, credential: string, nowMs: number): Promise<CredentialClaims> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(
      credential,
      (header) => {
        const key = header.kid === undefined ? undefined : keys.byKid.get(header.kid);
        if (key === undefined) throw invalid();
        return key.key;
      },
      { issuer: ISSUER, audience: AUDIENCE, algorithms: ["HS256"], currentDate: new Date(nowMs) },
    ));
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) {
      const exp = typeof err.payload.exp === "number" ? new Date(err.payload.exp * 1000).toISOString() : "in the past";
      throw new HttpError(401, "credential_expired", `the node credential expired at ${exp}`, {}, { "www-authenticate": "Bearer" });
    }
    throw invalid();
  }
  const node = typeof payload.node === "object" && payload.node !== null ? payload.node : {};
  const claims = CredentialClaimsSchema.safeParse({ v: 1, id: payload.sub, jti: payload.jti, iat: payload.iat, exp: payload.exp, ...node });
  if (!claims.success) throw invalid();
  return claims.data;
}
