import { DEFAULT_HOTSPOT_MBPS } from "@meridian/protocol";
import { regionIndex } from "@meridian/regions";
import { explainExclusions, hotspotCensus, type Candidate } from "@meridian/routing";
import { Hono, type Context } from "hono";
import { createMiddleware } from "hono/factory";
import { credentialKeys } from "../credentials";
import { decide, decideFor, exclusionFilter, POLICY_REASON, refusal, type Decision, type DecisionVariables } from "../decide";
import { errorBody, HttpError } from "../errors";
import { isolate } from "../isolate";
import { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_TTFT_MS, LOOP_HEADER, proxyToCandidates, type ProxyOutcome } from "../proxy";
import { REQUEST_ID_HEADER } from "../request-id";
import { meterBody, type MeteredBody } from "../ledger/meter";
import { acquireSlot, authenticateTenant, tenantOf, TenantUsageRecorder, tenantUsageEntry, type AuthenticatedTenant } from "../tenants";
import { usageEntry } from "../usage";

type ClientApp = { Bindings: Env; Variables: DecisionVariables };

/** The client side of the gateway: `/route` explains a decision, `/v1/*` acts on it. */
export const clientRoutes = new Hono<ClientApp>();

/** How a served response was routed: what the counters and the request event record. */
interface ServedBy {
  route: string;
  region: string;
  node: string;
}

/**
 * Counts one client request by route, outcome and status, per tenant, and as one Analytics
 * Engine data point across isolates (non-blocking; the runtime batches them).
 */
function countOutcome(env: Env, routeName: string, status: number, served: ServedBy | null, decision: Decision | null, tenant: AuthenticatedTenant | null): void {
  const outcome = served?.route ?? OUTCOME_BY_STATUS[status] ?? (status < 400 ? "answered" : "error");
  isolate.metrics.countRequest(routeName, outcome, status);
  env.REQUEST_EVENTS?.writeDataPoint({
    indexes: [routeName],
    blobs: [outcome, decision?.client.country ?? "", served?.region ?? "", served?.node ?? ""],
    doubles: [status, decision?.candidates.length ?? 0],
  });
  if (tenant) isolate.metrics.countTenantRequest(tenant.id, served !== null ? "served" : status === 200 ? "answered" : (TENANT_REFUSALS[status] ?? "error"));
}

/** countOutcome for the middleware-chained routes (errors included: onError has run). */
const counted = (routeName: string) =>
  createMiddleware<ClientApp>(async (c, next) => {
    await next();
    const decision = c.get("decision") as Decision | undefined;
    countOutcome(c.env, routeName, c.res.status, null, decision ?? null, c.get("tenant") ?? null);
  });
const TENANT_REFUSALS: Record<number, string> = { 429: "rate_limited", 451: "blocked_by_policy", 503: "unavailable", 400: "bad_request", 502: "upstream_failed" };
/** Per-isolate writer of the tenants' usage ledgers. */
const tenantUsage = new TenantUsageRecorder();
const OUTCOME_BY_STATUS: Record<number, string> = { 400: "bad_request", 451: "blocked_by_policy", 502: "upstream_failed", 503: "unavailable" };

clientRoutes.get("/route", counted("/route"), authenticateTenant, decide, (c) => {
  const decision = c.var.decision;
  const body = explain(decision);
  if (decision.candidates.length === 0) {
    const err = refusal(decision);
    for (const [name, value] of Object.entries(err.headers)) c.header(name, value);
    return c.json({ ...errorBody(err.code, err.message, { ...err.extra, requestId: c.var.requestId }), ...body }, err.status);
  }
  return c.json(body);
});

/** A request that carries this deployment's own forwarding mark came back through a node: 508. */
async function refuseLoop(request: Request, env: Env): Promise<void> {
  const mark = request.headers.get(LOOP_HEADER);
  if (mark !== null && mark === (await isolate.signer.mark(await credentialKeys(env)))) {
    throw new HttpError(508, "loop_detected", "this request was forwarded by this gateway already: a node's endpoint points back at the gateway");
  }
}

/**
 * The OpenAI surface, the hot path: one handler that runs the same steps as the chained
 * routes (loop guard, tenant key, decision, limit slot, proxy, meter, counters) as plain
 * calls, without a middleware hop per step. Errors go to app.onError like everywhere else.
 */
clientRoutes.all("/v1/*", async (c) => {
  const request = c.req.raw;
  const waitUntil = (p: Promise<unknown>) => c.executionCtx.waitUntil(p);
  let tenant: AuthenticatedTenant | null = null;
  let decision: Decision | null = null;
  try {
    await refuseLoop(request, c.env);
    tenant = await tenantOf(request, c.env, waitUntil);
    if (tenant === null) throw new HttpError(401, "missing_api_key", "send your tenant key as Authorization: Bearer <key>");
    decision = await decideFor(request, c.env, tenant, waitUntil);
    const served = await serve(c, decision, tenant, waitUntil);
    countOutcome(c.env, "/v1", served.response.status, served.by, decision, tenant);
    return served.response;
  } catch (err) {
    countOutcome(c.env, "/v1", err instanceof HttpError ? err.status : 500, null, decision, tenant);
    throw err;
  }
});

/** A decided request, proxied under the tenant's limit slot and metered for every ledger. */
async function serve(c: Context<ClientApp>, decision: Decision, tenant: AuthenticatedTenant, waitUntil: (p: Promise<unknown>) => void): Promise<{ response: Response; by: ServedBy }> {
  // The tenant's limits hold across isolates: a slot from its limiter, released when the body ends.
  const slot = await acquireSlot(c.env, tenant, waitUntil);
  let outcome: ProxyOutcome;
  try {
    if (decision.candidates.length === 0) throw refusal(decision);
    outcome = await proxyProtected(c.req.raw, decision, c.var.requestId, c.env);
  } catch (err) {
    slot.release();
    if (err instanceof HttpError) for (const [name, value] of Object.entries(slot.headers)) c.header(name, value);
    throw err;
  }
  // Usage as the client receives it: bytes handed over and tokens reported in them, metered
  // once for every ledger (this tenant's, and the carrier's offload ledger).
  const startedAt = Date.now();
  const metered = await meterBody(outcome.response, c.req.raw.signal);
  // A body already in hand frees its slot now; a stream holds it (renewed) until it ends.
  if (metered.whole) slot.release();
  else waitUntil(slot.holdUntil(metered.ended));
  waitUntil(
    metered.ended.then((end) => {
      isolate.metrics.countTenantTokens(tenant.id, end.tokens?.promptTokens ?? 0, end.tokens?.completionTokens ?? 0);
      return tenantUsage.record(c.env, tenant.id, tenantUsageEntry(tenant.keyId, startedAt, end));
    }),
  );
  return servedResponse(outcome, metered, decision, c, slot.headers);
}

/** The proxy call: signed for the chosen node, failover as the request allows. */
async function proxyProtected(request: Request, decision: Decision, requestId: string, env: Env): Promise<ProxyOutcome> {
  const keys = await credentialKeys(env);
  return proxyToCandidates(request, decision.client.path, decision.candidates, observeAttempt(decision), {
    requestId,
    loopMark: await isolate.signer.mark(keys),
    sign: (node, method, path) => isolate.signer.headers(keys, node, method, path, Date.now()),
    ...(env.FORWARD_CLIENT_COUNTRY === "true" ? { clientCountry: decision.client.country } : {}),
    headersTimeoutMs: headersTimeout(env),
    body: decision.client.body,
    ...(decision.client.stream ? { firstByteMs: ttftDeadline(env) } : {}),
  });
}

/**
 * The response as served, built once: the node's status and headers, the metered body, the
 * headers that say who served it and how it was routed (they replace any of the node's own of
 * those names), the tenant's rate-limit headers, and for carrier traffic its ledger entry.
 */
function servedResponse(outcome: ProxyOutcome, metered: MeteredBody, decision: Decision, c: Context<ClientApp>, limitHeaders: Record<string, string>): { response: Response; by: ServedBy } {
  const { carrier } = decision;
  const node = outcome.node;
  const carrierRoute = carrier === null ? null : node.kind === "hotspot" ? "offload" : "backbone";
  const routeName = carrierRoute ?? (outcome.attempt === 0 ? "primary" : "failover");
  const own = new Map<string, string>([
    ["x-meridian-node", node.id],
    ["x-meridian-region", node.region],
    ["x-meridian-route", routeName],
    ["x-meridian-policy-version", String(decision.policy.version)],
    [REQUEST_ID_HEADER, c.var.requestId],
    ...Object.entries(limitHeaders),
  ]);
  if (carrier !== null && carrierRoute !== null) {
    own.set("x-meridian-carrier", carrier.partner.id);
    own.set("x-meridian-offload-reason", outcome.attempt === 0 ? carrier.offload.reason : "hotspot-failed");
    // Carrier traffic: the bytes the subscriber actually took (the body's one meter) go to the ledger.
    const startedAt = Date.now();
    c.executionCtx.waitUntil(
      metered.ended.then((end) =>
        isolate.usage.record(
          c.env,
          carrier.partner.id,
          usageEntry({
            startedAt,
            node: node.id,
            region: carrier.offload.clientRegion ?? node.region,
            route: carrierRoute,
            end,
            flagged: node.geoFlag !== undefined,
            creditMbps: carrierRoute === "offload" ? (node.maxMbps ?? DEFAULT_HOTSPOT_MBPS) : null,
          }),
        ),
      ),
    );
  }
  // Name-value pairs rather than a Headers copy: one headers object per response, not two.
  const headers: [string, string][] = [];
  for (const pair of outcome.response.headers) if (!own.has(pair[0])) headers.push(pair);
  for (const pair of own) headers.push(pair);
  const response = new Response(metered.body, { status: outcome.response.status, statusText: outcome.response.statusText, headers });
  return { response, by: { route: routeName, region: node.region, node: node.id } };
}

/** Feeds every proxy attempt to this isolate's outlier detector. */
function observeAttempt(decision: Decision) {
  return (node: Candidate["node"], failure: string | null): void => {
    isolate.metrics.countAttempt(node.id, failure !== null);
    if (failure === null) return isolate.outliers.recordSuccess(node.id);
    const regionSize = decision.index.regionNodes[regionIndex(node.region)]?.length ?? 1;
    const ejection = isolate.outliers.recordFailure(node.id, node.region, regionSize, failure);
    if (ejection !== null) console.warn(JSON.stringify({ at: "outlier.eject", ...ejection, until: new Date(ejection.until).toISOString() }));
  };
}

function headersTimeout(env: Env): number {
  const ms = Number(env.UPSTREAM_HEADERS_TIMEOUT_MS ?? DEFAULT_HEADERS_TIMEOUT_MS);
  return Number.isFinite(ms) && ms > 0 ? ms : DEFAULT_HEADERS_TIMEOUT_MS;
}

/** UPSTREAM_TTFT_MS: the first-byte deadline of streaming requests (default 10 s). */
function ttftDeadline(env: Env): number {
  const ms = Number(env.UPSTREAM_TTFT_MS ?? DEFAULT_TTFT_MS);
  return Number.isFinite(ms) && ms > 0 ? ms : DEFAULT_TTFT_MS;
}

const round = (x: number) => Math.round(x * 100) / 100;

function describe(c: Candidate) {
  const { node, parts } = c;
  return {
    id: node.id,
    region: node.region,
    kind: node.kind,
    ...(node.gpu ? { gpu: node.gpu } : {}),
    ...(node.models ? { models: node.models } : {}),
    pricePerGpuHour: node.pricePerGpuHour ?? null,
    rttMs: round(c.rttMs),
    score: round(c.score),
    ...(parts ? { scoreParts: { rttMs: round(parts.rttMs), loadMs: round(parts.loadMs), penaltyMs: round(parts.penaltyMs), slowStartMs: round(parts.slowStartMs), priceMs: round(parts.priceMs) } } : {}),
    ...(c.affinity ? { affinity: true } : {}),
    load: node.load,
    ...(node.queue !== undefined ? { queue: node.queue } : {}),
    ...(node.tokensPerSecond !== undefined ? { tokensPerSecond: node.tokensPerSecond } : {}),
  };
}

/** `/route`'s body: the client as read, the chosen node and fallbacks, and why every other node is out. */
function explain(decision: Decision) {
  const { client, index, policy, carrier, tenant } = decision;
  const filter = exclusionFilter(decision.judge);
  const [primary, ...fallbacks] = decision.candidates;
  return {
    client: {
      ...client.location,
      country: client.country,
      ...(client.subdivision ? { subdivision: client.subdivision } : {}),
      ...(client.territory ? { territory: client.territory } : {}),
      source: client.source,
      ...(client.residency ? { residency: client.residency } : {}),
    },
    ...(tenant === null
      ? {}
      : { tenant: { id: tenant.id, name: tenant.name, hqCountry: tenant.hqCountry, ...(tenant.parentHqCountry ? { parentHqCountry: tenant.parentHqCountry } : {}), ...(tenant.residency ? { residency: tenant.residency } : {}) } }),
    requirements: client.requirements,
    steer: client.steer,
    ...(client.affinityKey !== undefined ? { affinity: true } : {}),
    node: primary ? describe(primary) : null,
    fallbacks: fallbacks.map(describe),
    excluded: explainExclusions(index, client.requirements, filter).map((x) =>
      x.reason.startsWith(POLICY_REASON) ? { id: x.id, region: x.region, reason: "policy", rules: x.reason.slice(POLICY_REASON.length).split(",") } : x,
    ),
    ...(carrier === null
      ? {}
      : {
          offload: {
            partner: carrier.partner.id,
            route: carrier.offload.route,
            reason: carrier.offload.reason,
            clientRegion: carrier.offload.clientRegion,
            subscriberBucket: round(carrier.offload.bucket),
            dial: carrier.offload.dial === null ? null : { ...carrier.offload.dial, percent: round(carrier.offload.dial.percent), base: carrier.partner.offload.dial.base, max: carrier.partner.offload.dial.max },
            rules: carrier.partner.offload,
            hotspots: client.location === null ? null : hotspotCensus(index, client.location, carrier.partner.offload, filter),
          },
        }),
    fleetSize: index.size,
    snapshotVersion: isolate.fleet.snapshotVersion,
    policyVersion: policy.version,
  };
}
