/**
 * The console's server side, mounted at /console. The pages themselves are static assets
 * (workers/gateway/assets/console, see docs/console.md); this router signs people in and
 * serves what the pages need beyond the admin API: the region catalog with the document
 * schemas (JSON Schema generated from the zod schemas), the land outline for the map, and
 * the route explainer with an explicit client location.
 */
import { GPU_CLASSES, NodeKindSchema, PolicyDocumentSchema, CarrierDocumentSchema, CarrierPartnerSchema } from "@meridian/protocol";
import { REGIONS } from "@meridian/regions";
import { Hono, type ExecutionContext } from "hono";
import { z } from "zod";
import { limit, validJson, type AdminApp } from "../admin-common";
import { assertSameOriginWrite, requireRole, roleOf } from "../auth";
import { HttpError } from "../errors";
import { EXPLAIN_TENANT_HEADER, INTERNAL_EXPLAIN_HEADER, internalExplainToken } from "../tenants";
import { landPath } from "./land";
import { SESSION_COOKIE, SESSION_TTL_MS, cookieIsSecure, cookieValue, newCsrfToken, sessionCookie, signSession, tokenPrint, verifySession } from "./session";

/** What the console needs of the gateway app: its fetch, to ask /route as a client would. */
export interface Gateway {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response>;
}

export const SignInSchema = z.strictObject({ token: z.string().min(1).max(512) });

/** The explainer's client and requirements, as query parameters. */
export const ExplainQuerySchema = z.strictObject({
  lat: z.coerce.number().min(-90).max(90),
  lon: z.coerce.number().min(-180).max(180),
  country: z.string().regex(/^[A-Za-z]{2}$/).optional(),
  subdivision: z.string().regex(/^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$/).optional(),
  kind: z.string().max(16).optional(),
  gpu: z.string().max(16).optional(),
  minVram: z.string().max(8).optional(),
  residency: z.string().max(32).optional(),
  /** Explain as this tenant (its headquarters and residency). */
  tenant: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/).optional(),
});

function adminToken(env: Env): string {
  if (env.ADMIN_TOKEN === undefined || env.ADMIN_TOKEN.length < 16) throw new HttpError(503, "admin_disabled", "ADMIN_TOKEN is not configured (at least 16 characters)");
  return env.ADMIN_TOKEN;
}

export function consoleRoutes(gateway: Gateway) {
  const routes = new Hono<AdminApp>();

  // Every answer of this router is private to the signed-in person.
  routes.use("/api/*", async (c, next) => {
    await next();
    c.header("cache-control", c.res.headers.get("cache-control") ?? "no-store");
  });

  /** Sign in: the token is checked once and never stored; the browser keeps a signed cookie. */
  routes.post("/api/session", limit(4096), validJson(SignInSchema), async (c) => {
    const secret = adminToken(c.env);
    assertSameOriginWrite(c.req.raw, null);
    const { token } = c.req.valid("json");
    const role = await roleOf(c.env, token);
    if (role === null) throw new HttpError(401, "unauthorized", "that token is not an admin, editor or viewer token");
    const session = { role, expiresAt: Date.now() + SESSION_TTL_MS, csrf: newCsrfToken(), tokenPrint: await tokenPrint(token) };
    c.header("set-cookie", sessionCookie(await signSession(secret, session), SESSION_TTL_MS / 1000, cookieIsSecure(c.req.url)));
    return c.json({ role, expiresAt: new Date(session.expiresAt).toISOString(), csrf: session.csrf });
  });

  routes.get("/api/session", async (c) => {
    const cookie = cookieValue(c.req.header("cookie"), SESSION_COOKIE);
    const session = cookie === null ? null : await verifySession(adminToken(c.env), cookie, Date.now());
    if (session === null) throw new HttpError(401, "unauthorized", "not signed in");
    return c.json({ role: session.role, expiresAt: new Date(session.expiresAt).toISOString(), csrf: session.csrf });
  });

  routes.delete("/api/session", (c) => {
    assertSameOriginWrite(c.req.raw, null);
    c.header("set-cookie", sessionCookie("", 0, cookieIsSecure(c.req.url)));
    return c.body(null, 204);
  });

  /** The catalog and the JSON Schemas the editors validate against as you type. */
  routes.get("/api/catalog", requireRole("viewer"), (c) =>
    c.json({
      regions: REGIONS,
      gpuClasses: GPU_CLASSES,
      nodeKinds: NodeKindSchema.options,
      schemas: {
        policy: z.toJSONSchema(PolicyDocumentSchema, { io: "input", unrepresentable: "any" }),
        carriers: z.toJSONSchema(CarrierDocumentSchema, { io: "input", unrepresentable: "any" }),
        partner: z.toJSONSchema(CarrierPartnerSchema, { io: "input", unrepresentable: "any" }),
      },
    }),
  );

  routes.get("/api/land", (c) => c.json({ viewBox: "0 0 360 180", path: landPath() }, 200, { "cache-control": "public, max-age=86400" }));

  /**
   * GET /route for a client the operator names. Production ignores the x-client-* headers
   * (anyone could dodge export control with them), so the location also travels as the
   * request's `cf` object, which only code inside the Worker can set. This only explains a
   * decision; nothing is proxied, so it gives a signed-in viewer no way around the policy.
   */
  routes.get("/api/route", requireRole("viewer"), async (c) => {
    const parsed = ExplainQuerySchema.safeParse(c.req.query());
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new HttpError(400, "invalid_query", issue ? `${issue.path.join(".") || "query"}: ${issue.message}` : "invalid query");
    }
    const q = parsed.data;
    const country = q.country?.toUpperCase();
    const subdivision = q.subdivision?.toUpperCase();
    const headers = new Headers({ "x-client-lat": String(q.lat), "x-client-lon": String(q.lon) });
    if (country) headers.set("x-client-country", country);
    if (subdivision) headers.set("x-client-subdivision", subdivision);
    if (q.kind) headers.set("x-meridian-kind", q.kind);
    if (q.gpu) headers.set("x-meridian-gpu", q.gpu);
    if (q.minVram) headers.set("x-meridian-min-vram-gb", q.minVram);
    if (q.residency) headers.set("x-meridian-residency", q.residency);
    const cf = {
      latitude: String(q.lat),
      longitude: String(q.lon),
      ...(country ? { country } : {}),
      ...(country && subdivision?.startsWith(`${country}-`) ? { regionCode: subdivision.slice(country.length + 1) } : {}),
    };
    // Explain-only, from inside the Worker: no tenant key, optionally as a named tenant.
    headers.set(INTERNAL_EXPLAIN_HEADER, internalExplainToken());
    if (q.tenant) headers.set(EXPLAIN_TENANT_HEADER, q.tenant);
    const request = new Request(new URL("/route", c.req.url), { headers, cf });
    return gateway.fetch(request, c.env, c.executionCtx);
  });

  return routes;
}
