import type { CompiledPolicy, NodeJudge } from "@meridian/policy";
import { DEFAULT_HOTSPOT_MBPS, type CarrierPartner, type NodeRecord, type Requirements } from "@meridian/protocol";
import { REGIONS, regionIndex } from "@meridian/regions";
import {
  DialBook,
  chooseOffload,
  explainExclusions,
  hotspotCensus,
  route,
  SLOT_COUNT,
  slotContext,
  subscriberBucket,
  type Candidate,
  type FleetIndex,
  type NodeFilter,
  type OffloadDecision,
  type SlotPolicy,
} from "@meridian/routing";
import { Hono, type Context } from "hono";
import { createMiddleware } from "hono/factory";
import { admin } from "./admin";
import { carriersAdmin } from "./admin-carriers";
import { bearerToken, requireRole } from "./auth";
import { geoFlagOf, parseCarrier, parseRequirements, parseResidency, resolveClient, subscriberKey } from "./client";
import { consoleRoutes } from "./console";
import { verifyCredential } from "./credentials";
import type { Env } from "./env";
import { HttpError, errorBody, renderError } from "./errors";
import { FleetCache } from "./fleet-cache";
import { Metrics } from "./metrics";
import { outliers } from "./outliers";
import { DEFAULT_HEADERS_TIMEOUT_MS, proxyToCandidates } from "./proxy";
import { hourlyCreditCap } from "./offload-ledger";
import { GEO_FLAG_HEADER, VERIFIED_CLAIMS_HEADER } from "./region-hub";
import { UsageRecorder, countedBody } from "./usage";

export { Directory } from "./directory";
export { OffloadLedger } from "./offload-ledger";
export { CarrierStore, PolicyStore } from "./policy-store";
export { RegionHub } from "./region-hub";

type App = { Bindings: Env };

/** Per-isolate fleet snapshot and compiled policy, shared by every request this isolate serves. */
const fleet = new FleetCache();
const metrics = new Metrics();
const notEjected: NodeFilter = (node) => (outliers.isEjected(node.id) ? "ejected" : null);
/** Offload boost state per backbone node (see DialBook). */
const dials = new DialBook();
const usage = new UsageRecorder();
const HOUR_MS = 3600_000;
/** Seconds a client should wait when no node can take the request. */
const RETRY_AFTER_S = "2";
/** Prefix of exclusion reasons that come from the policy (followed by the deciding rule ids). */
const POLICY_REASON = "policy:";

function headersTimeout(env: Env): number {
  const ms = Number(env.UPSTREAM_HEADERS_TIMEOUT_MS ?? DEFAULT_HEADERS_TIMEOUT_MS);
  return Number.isFinite(ms) && ms > 0 ? ms : DEFAULT_HEADERS_TIMEOUT_MS;
}

/** "/v1/x?y" of an absolute URL, without a full URL parse. */
function pathAndQuery(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const hash = url.indexOf("#", start);
  return hash < 0 ? url.slice(start) : url.slice(start, hash);
}

const round = (x: number) => Math.round(x * 100) / 100;

function describe(c: Candidate) {
  const { node } = c;
  return { id: node.id, region: node.region, kind: node.kind, ...(node.gpu ? { gpu: node.gpu } : {}), rttMs: round(c.rttMs), score: round(c.score), load: node.load };
}

const nodeContext = (n: NodeRecord) => ({ region: n.region, kind: n.kind, ...(n.gpu ? { gpuClass: n.gpu.class } : {}) });

/**
 * The policy per (region, slot): what routing asks on its hot path. Verdicts are kept per
 * judge (one per client class and policy version) in a flat array: 0 unknown, 1 allowed,
 * 2 refused, so a warm client class costs an array read instead of a key string and a map.
 */
const slotVerdicts = new WeakMap<NodeJudge, Uint8Array>();
function slotPolicy(judge: NodeJudge): SlotPolicy {
  let verdicts = slotVerdicts.get(judge);
  if (verdicts === undefined) slotVerdicts.set(judge, (verdicts = new Uint8Array(REGIONS.length * SLOT_COUNT)));
  const cache = verdicts;
  return (region, slot) => {
    const at = region * SLOT_COUNT + slot;
    const known = cache[at];
    if (known !== undefined && known !== 0) return known === 1;
    const id = REGIONS[region]?.id;
    const allowed = id !== undefined && judge({ region: id, ...slotContext(slot) }).allowed;
    cache[at] = allowed ? 1 : 2;
    return allowed;
  };
}

function policyFilter(judge: NodeJudge): NodeFilter {
  return (node) => {
    const verdict = judge(nodeContext(node));
    return verdict.allowed ? null : `${POLICY_REASON}${verdict.rules.join(",")}`;
  };
}

/** Client, requirements, the policy verdicts and the ranked candidates for this request. */
async function decide(c: Context<App>) {
  const client = resolveClient(c.req.raw, c.env);
  const requirements = parseRequirements(c.req.raw.headers);
  const residency = parseResidency(c.req.raw.headers);
  const view = await fleet.get(c.env, (p) => c.executionCtx.waitUntil(p));
  const { index, policy } = view;
  // Fail closed: without a policy nobody knows what is allowed, so nothing is routed.
  if (policy === null) throw new HttpError(503, "policy_unavailable", "no routing policy is loaded yet; nothing is routed blind", {}, { "retry-after": RETRY_AFTER_S });
  if (residency !== undefined && !policy.residencies.has(residency)) {
    throw new HttpError(400, "unknown_residency", `no rule of policy v${policy.version} enforces residency "${residency}"; known: ${[...policy.residencies].join(", ") || "none"}`);
  }
  const judge = policy.forClient({
    ...(client.location?.country ? { country: client.location.country } : {}),
    ...(client.location?.subdivision ? { subdivision: client.location.subdivision } : {}),
    ...(residency ? { residency } : {}),
  });
  const carrier = carrierOf(c, requirements, view.carriers, view.carriersVersion);
  const startedAt = performance.now();
  const allowed = slotPolicy(judge);
  const filter = outliers.active ? { filter: notEjected } : {};
  let decision: { candidates: Candidate[]; examined: number };
  let offload: OffloadDecision | null = null;
  if (carrier === null) decision = route(index, { client: client.location, requirements, allowed, now: Date.now(), ...filter });
  else {
    offload = chooseOffload(index, { client: client.location, partner: carrier, bucket: subscriberBucket(subscriberKey(c.req.raw)), dials, allowed, ...filter });
    decision = offload;
  }
  metrics.observeDecision(decision.examined, (performance.now() - startedAt) / 1000);
  return { client, requirements, residency, index, policy, judge, decision, carrier, offload };
}

/** The carrier partner named by x-meridian-carrier, or null for an ordinary request. */
function carrierOf(c: Context<App>, requirements: Requirements, carriers: ReadonlyMap<string, CarrierPartner>, version: number): CarrierPartner | null {
  const id = parseCarrier(c.req.raw.headers);
  if (id === undefined) return null;
  if (requirements.kind !== undefined && requirements.kind !== "hotspot") {
    throw new HttpError(400, "invalid_requirements", "x-meridian-carrier requests are served by hotspots or the partner's backbone: send x-meridian-kind: hotspot or nothing");
  }
  const partner = carriers.get(id);
  if (partner === undefined) throw new HttpError(400, "unknown_partner", `no carrier partner "${id}" in carriers v${version}`);
  return partner;
}

/** Why nothing qualified: 451 when the policy refused nodes that could otherwise serve, else 503. */
function refusal(index: FleetIndex, policy: CompiledPolicy, judge: NodeJudge, decision: Awaited<ReturnType<typeof decide>>): HttpError {
  const client = decision.client.location;
  const unrestricted =
    decision.carrier === null
      ? route(index, { client, requirements: decision.requirements, fallbacks: 0 })
      : chooseOffload(index, { client, partner: decision.carrier, bucket: 0, dials: new DialBook() });
  const nearest = unrestricted.candidates[0];
  if (nearest === undefined) {
    return new HttpError(503, "no_healthy_node", "no healthy node can serve this request right now", {}, { "retry-after": RETRY_AFTER_S });
  }
  const verdict = judge(nodeContext(nearest.node));
  const rule = verdict.rules[0] ?? "unknown";
  return new HttpError(451, "blocked_by_policy", `refused by policy: ${policy.reasonOf(rule)}`, { rule, rules: verdict.rules, policyVersion: policy.version });
}

const app = new Hono<App>();

app.onError(renderError);
app.notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404));

/** Counts every client request by route, outcome and status (errors included: onError has run). */
const countOutcome = (routeName: string) =>
  createMiddleware<App>(async (c, next) => {
    await next();
    const status = c.res.status;
    const outcome = c.res.headers.get("x-meridian-route") ?? OUTCOME_BY_STATUS[status] ?? (status < 400 ? "answered" : "error");
    metrics.countRequest(routeName, outcome, status);
  });
const OUTCOME_BY_STATUS: Record<number, string> = { 400: "bad_request", 451: "blocked_by_policy", 502: "upstream_failed", 503: "unavailable" };

app.use("/v1/*", countOutcome("/v1"));
app.use("/route", countOutcome("/route"));

app.get("/metrics", requireRole("viewer"), async (c) => {
  const fleetFigures = await c.env.DIRECTORY.get(c.env.DIRECTORY.idFromName("global")).metrics();
  const body = metrics.render({ ...fleetFigures, snapshotVersion: fleet.snapshotVersion, policyVersion: fleet.policyVersion, ejected: outliers.ejected().length });
  return c.text(body, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
});

app.get("/healthz", (c) => c.json({ status: "ok", snapshotVersion: fleet.snapshotVersion, policyVersion: fleet.policyVersion }));

// ---- clients --------------------------------------------------------------------------

app.get("/route", async (c) => {
  const decided = await decide(c);
  const { client, requirements, residency, index, policy, judge, decision } = decided;
  // Explanations only: why each node that cannot serve is out (ejection first, then policy).
  const byPolicy = policyFilter(judge);
  const filter: NodeFilter = (node) => notEjected(node) ?? byPolicy(node);
  const [primary, ...fallbacks] = decision.candidates;
  const body = {
    client: { ...client.location, source: client.source, ...(residency ? { residency } : {}) },
    requirements,
    node: primary ? describe(primary) : null,
    fallbacks: fallbacks.map(describe),
    excluded: explainExclusions(index, requirements, filter).map((x) =>
      x.reason.startsWith(POLICY_REASON) ? { id: x.id, region: x.region, reason: "policy", rules: x.reason.slice(POLICY_REASON.length).split(",") } : x,
    ),
    ...(decided.offload !== null && decided.carrier !== null ? { offload: explainOffload(decided.offload, decided.carrier, decided) } : {}),
    fleetSize: index.size,
    snapshotVersion: fleet.snapshotVersion,
    policyVersion: policy.version,
  };
  if (primary === undefined) {
    const err = refusal(index, policy, judge, decided);
    for (const [name, value] of Object.entries(err.headers)) c.header(name, value);
    return c.json({ ...errorBody(err.code, err.message, err.extra), ...body }, err.status);
  }
  return c.json(body);
});

/** Why this carrier request goes where it goes: the dial, the subscriber's place on it, nearby hotspots. */
function explainOffload(offload: OffloadDecision, partner: CarrierPartner, decided: Awaited<ReturnType<typeof decide>>) {
  const byPolicy = policyFilter(decided.judge);
  const client = decided.client.location;
  return {
    partner: partner.id,
    route: offload.route,
    reason: offload.reason,
    clientRegion: offload.clientRegion,
    subscriberBucket: round(offload.bucket),
    dial: offload.dial === null ? null : { ...offload.dial, percent: round(offload.dial.percent), base: partner.offload.dial.base, max: partner.offload.dial.max },
    rules: partner.offload,
    hotspots: client === null ? null : hotspotCensus(decided.index, client, partner.offload, (node) => notEjected(node) ?? byPolicy(node)),
  };
}

app.all("/v1/*", async (c) => {
  const decided = await decide(c);
  if (decided.decision.candidates.length === 0) throw refusal(decided.index, decided.policy, decided.judge, decided);
  const outcome = await proxyToCandidates(c.req.raw, pathAndQuery(c.req.url), decided.decision.candidates, (node, failure) => {
    if (failure === null) return outliers.recordSuccess(node.id);
    const regionSize = decided.index.regionNodes[regionIndex(node.region)]?.length ?? 1;
    const ejection = outliers.recordFailure(node.id, node.region, regionSize, failure);
    if (ejection !== null) console.warn(JSON.stringify({ at: "outlier.eject", ...ejection, until: new Date(ejection.until).toISOString() }));
  }, headersTimeout(c.env));
  const { carrier, offload } = decided;
  if (carrier === null || offload === null) {
    const response = new Response(outcome.response.body, outcome.response);
    response.headers.set("x-meridian-node", outcome.node.id);
    response.headers.set("x-meridian-region", outcome.node.region);
    response.headers.set("x-meridian-route", outcome.attempt === 0 ? "primary" : "failover");
    response.headers.set("x-meridian-policy-version", String(decided.policy.version));
    return response;
  }
  // Carrier traffic: count the bytes the subscriber actually takes, then write them to the ledger.
  const served = outcome.node;
  const routeName = served.kind === "hotspot" ? "offload" : "backbone";
  const counted = countedBody(outcome.response.body, c.req.raw.signal);
  const response = new Response(counted.body, outcome.response);
  response.headers.set("x-meridian-node", served.id);
  response.headers.set("x-meridian-region", served.region);
  response.headers.set("x-meridian-route", routeName);
  response.headers.set("x-meridian-carrier", carrier.id);
  response.headers.set("x-meridian-offload-reason", outcome.attempt === 0 ? offload.reason : "hotspot-failed");
  response.headers.set("x-meridian-policy-version", String(decided.policy.version));
  const startedAt = Date.now();
  c.executionCtx.waitUntil(
    counted.ended.then((end) =>
      usage.record(c.env, carrier.id, {
        hour: Math.floor(startedAt / HOUR_MS) * HOUR_MS,
        node: served.id,
        region: offload.clientRegion ?? served.region,
        route: routeName,
        bytes: end.bytes,
        aborted: end.aborted,
        flagged: served.geoFlag !== undefined,
        creditCapBytes: routeName === "offload" ? hourlyCreditCap(served.maxMbps ?? DEFAULT_HOTSPOT_MBPS) : null,
      }),
    ),
  );
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
  // Where the socket arrived vs where the node is enrolled (anti-gaming); never trusted from the node.
  headers.delete(GEO_FLAG_HEADER);
  const geoFlag = geoFlagOf(c.req.raw, c.env, claims.region);
  if (geoFlag !== null) headers.set(GEO_FLAG_HEADER, JSON.stringify(geoFlag));
  const hub = c.env.REGION_HUB.get(c.env.REGION_HUB.idFromName(claims.region));
  return hub.fetch(new Request(c.req.raw, { headers }));
});

// ---- admin ----------------------------------------------------------------------------

app.route("/admin", admin);
app.route("/admin", carriersAdmin);
app.route("/console", consoleRoutes(app));

export default app;
