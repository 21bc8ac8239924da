import { zValidator } from "@hono/zod-validator";
import { EnrollmentSchema, type NodeRecord } from "@meridian/protocol";
import { explainExclusions, route, type Candidate } from "@meridian/routing";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ZodType } from "zod";
import { bearerToken, requireAdmin } from "./auth";
import { parseRequirements, resolveClient } from "./client";
import { issueCredential, verifyCredential } from "./credentials";
import type { Env } from "./env";
import { HttpError, errorBody, renderError } from "./errors";
import { FleetCache } from "./fleet-cache";
import { proxyToCandidates } from "./proxy";
import { VERIFIED_CLAIMS_HEADER } from "./region-hub";

export { Directory } from "./directory";
export { RegionHub } from "./region-hub";

type App = { Bindings: Env };

/** Per-isolate fleet snapshot, shared by every request this isolate serves. */
const fleet = new FleetCache();
/** Seconds a client should wait when no node can take the request. */
const RETRY_AFTER_S = "2";
const ADMIN_BODY_LIMIT = 64 * 1024;

/** zod validation at the edge of a route, with the one error format. */
function validJson<T extends ZodType>(schema: T) {
  return zValidator("json", schema, (result) => {
    if (!result.success) {
      const issues = result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
      const first = issues[0];
      throw new HttpError(400, "invalid_body", first ? `${first.path || "body"}: ${first.message}` : "invalid body", { issues });
    }
  });
}

const limitAdminBody = bodyLimit({
  maxSize: ADMIN_BODY_LIMIT,
  onError: () => {
    throw new HttpError(413, "body_too_large", `admin request bodies are limited to ${ADMIN_BODY_LIMIT} bytes`);
  },
});

function describe(c: Candidate) {
  const { node } = c;
  return { id: node.id, region: node.region, kind: node.kind, ...(node.gpu ? { gpu: node.gpu } : {}), rttMs: round(c.rttMs), score: round(c.score), load: node.load };
}

const round = (x: number) => Math.round(x * 100) / 100;

/** Client, requirements and the ranked candidates for this request. */
async function decide(c: Context<App>) {
  const client = resolveClient(c.req.raw, c.env);
  const requirements = parseRequirements(c.req.raw.headers);
  const index = await fleet.get(c.env, (p) => c.executionCtx.waitUntil(p));
  const decision = route(index, { client: client.location, requirements });
  return { client, requirements, index, decision };
}

const noNode = () =>
  new HttpError(503, "no_healthy_node", "no healthy node can serve this request right now", {}, { "retry-after": RETRY_AFTER_S });

const app = new Hono<App>();

app.onError(renderError);
app.notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404));

app.get("/healthz", (c) => c.json({ status: "ok", snapshotVersion: fleet.snapshotVersion }));

// ---- clients --------------------------------------------------------------------------

app.get("/route", async (c) => {
  const { client, requirements, index, decision } = await decide(c);
  const [primary, ...fallbacks] = decision.candidates;
  const body = {
    client: { ...client.location, source: client.source },
    requirements,
    node: primary ? describe(primary) : null,
    fallbacks: fallbacks.map(describe),
    excluded: explainExclusions(index, requirements),
    fleetSize: index.size,
    snapshotVersion: fleet.snapshotVersion,
  };
  if (primary === undefined) {
    c.header("retry-after", RETRY_AFTER_S);
    return c.json({ ...errorBody("no_healthy_node", "no healthy node can serve this request right now"), ...body }, 503);
  }
  return c.json(body);
});

app.all("/v1/*", async (c) => {
  const { decision } = await decide(c);
  if (decision.candidates.length === 0) throw noNode();
  const url = new URL(c.req.url);
  const outcome = await proxyToCandidates(c.req.raw, url.pathname + url.search, decision.candidates);
  const response = new Response(outcome.response.body, outcome.response);
  response.headers.set("x-meridian-node", outcome.node.id);
  response.headers.set("x-meridian-region", outcome.node.region);
  response.headers.set("x-meridian-route", outcome.attempt === 0 ? "primary" : "failover");
  return response;
});

// ---- node agents ----------------------------------------------------------------------

app.get("/nodes/connect", async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new HttpError(426, "upgrade_required", "connect with a WebSocket upgrade", {}, { upgrade: "websocket" });
  }
  const token = bearerToken(c.req.header("authorization"));
  if (token === null) throw new HttpError(401, "unauthorized", "send Authorization: Bearer <node credential>", {}, { "www-authenticate": "Bearer" });
  const claims = await verifyCredential(c.env.NODE_CREDENTIAL_KEY, token, Date.now());
  const headers = new Headers(c.req.raw.headers);
  headers.set(VERIFIED_CLAIMS_HEADER, JSON.stringify(claims));
  const hub = c.env.REGION_HUB.get(c.env.REGION_HUB.idFromName(claims.region));
  return hub.fetch(new Request(c.req.raw, { headers }));
});

// ---- admin ----------------------------------------------------------------------------

app.use("/admin/*", requireAdmin);

app.post("/admin/nodes", limitAdminBody, validJson(EnrollmentSchema), async (c) => {
  const enrollment = c.req.valid("json");
  const { credential, claims } = await issueCredential(c.env.NODE_CREDENTIAL_KEY, enrollment, Date.now());
  const { v: _version, iat: _issued, exp, ...node } = claims;
  return c.json({ credential, node, expiresAt: new Date(exp * 1000).toISOString() }, 201);
});

app.get("/admin/fleet", async (c) => {
  const answer = await c.env.DIRECTORY.get(c.env.DIRECTORY.idFromName("global")).snapshotSince(null, 0);
  const nodes = answer.kind === "full" ? answer.nodes : [];
  nodes.sort((a, b) => (a.region === b.region ? (a.id < b.id ? -1 : 1) : a.region < b.region ? -1 : 1));
  return c.json({ version: answer.version, count: nodes.length, nodes: nodes.map(fleetEntry) });
});

function fleetEntry(n: NodeRecord) {
  return {
    id: n.id,
    kind: n.kind,
    region: n.region,
    healthy: n.health === "healthy",
    health: n.health,
    healthReason: n.healthReason,
    healthSince: new Date(n.healthSince).toISOString(),
    load: n.load,
    inFlight: n.inFlight,
    free: n.free,
    capacity: n.capacity,
    ...(n.gpu ? { gpu: n.gpu } : {}),
    endpoint: n.endpoint,
    connectedAt: new Date(n.connectedAt).toISOString(),
  };
}

export default app;
