import type { Tenant } from "@meridian/protocol";
import { createMiddleware } from "hono/factory";
import { bearerToken } from "../auth";
import { HttpError } from "../errors";
import { pathAndQuery } from "../proxy";
import { tenantStore } from "./durable";
import { TenantKeyCache } from "./key-cache";
import { hashTenantKey, sameHash } from "./keys";

/** The tenant a client request is made for, with the key it presented (by id, never the secret). */
export interface AuthenticatedTenant extends Tenant {
  keyId: string;
}

/** null only for the console's explain-only /route call (see INTERNAL_EXPLAIN_HEADER). */
export type TenantVariables = { tenant: AuthenticatedTenant | null };

/** Query parameters under which people put keys; a key there would end up in logs, so it is refused. */
const KEY_PARAMS = new Set(["api_key", "apikey", "api-key", "key", "access_token", "token", "authorization"]);

/**
 * The console's route explainer asks /route from inside the Worker. It proves that with this
 * isolate's random token (never sent anywhere: the proxy strips x-meridian-*), and may name a
 * tenant to explain for. /route only explains; nothing is proxied on this path.
 */
export const INTERNAL_EXPLAIN_HEADER = "x-meridian-internal-explain";
export const EXPLAIN_TENANT_HEADER = "x-meridian-explain-tenant";
// Made on first use: Workers allow no random values in global scope.
let internalToken: string | null = null;
export const internalExplainToken = (): string => (internalToken ??= crypto.randomUUID());

/** This isolate's key cache (see key-cache.ts). */
const keyCache = new TenantKeyCache<Env>(tenantStore);

const unauthorized = (code: string, message: string) => new HttpError(401, code, message, {}, { "www-authenticate": 'Bearer realm="meridian"' });

/**
 * Authenticates a client request by its tenant key (`Authorization: Bearer <key>`, what the
 * OpenAI SDKs send) and puts the tenant on c.var. Runs before decide: the tenant's
 * headquarters and residency are part of the decision. The key is consumed here; the proxy
 * never forwards Authorization.
 */
export const authenticateTenant = createMiddleware<{ Bindings: Env; Variables: TenantVariables }>(async (c, next) => {
  c.set("tenant", await tenantOf(c.req.raw, c.env, (p) => c.executionCtx.waitUntil(p)));
  await next();
});

/** The tenant a request is made for (see authenticateTenant); throws 401 without a valid key. */
export async function tenantOf(request: Request, env: Env, waitUntil: (p: Promise<unknown>) => void): Promise<AuthenticatedTenant | null> {
  refuseKeyInQuery(request.url);
  const headers = request.headers;
  const internal = headers.get(INTERNAL_EXPLAIN_HEADER);
  if (internal !== null && pathAndQuery(request.url).split("?", 1)[0] === "/route" && sameHash(internal, internalExplainToken())) {
    const explainFor = headers.get(EXPLAIN_TENANT_HEADER);
    if (explainFor === null || explainFor === "") return null;
    const tenant = await tenantStore(env).get(explainFor);
    if (tenant === null) throw new HttpError(404, "unknown_tenant", `no tenant ${explainFor}`);
    return { ...tenant, keyId: "console" };
  }
  const authorization = headers.get("authorization");
  if (authorization === null || authorization.trim() === "") throw unauthorized("missing_api_key", "send your tenant key as Authorization: Bearer <key>");
  const key = bearerToken(authorization);
  if (key === null) throw unauthorized("invalid_api_key", "the Authorization header must be Bearer <key>");
  const resolved = await keyCache.lookup(env, await hashTenantKey(key), waitUntil);
  if (resolved === null) throw unauthorized("invalid_api_key", "the key is not valid (unknown or revoked)");
  return { ...resolved.tenant, keyId: resolved.keyId };
}

function refuseKeyInQuery(url: string): void {
  const q = url.indexOf("?");
  if (q < 0) return;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const [name, value] of params) {
    if (KEY_PARAMS.has(name.toLowerCase()) || value.startsWith("mk_")) {
      throw new HttpError(400, "key_in_query", "keys are never accepted in the URL (it ends up in logs); send Authorization: Bearer <key> and rotate the key you exposed");
    }
  }
}
