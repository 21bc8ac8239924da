import { compilePolicy, diffPolicies, fleetImpact, impactMatrix, tenantImpact, validatePolicy } from "@meridian/policy";
import { RollbackRequestSchema, type NodeRecord } from "@meridian/protocol";
import { SLOW_START_MS, slowStartPenaltyMs, type Ejection } from "@meridian/routing";
import { Hono } from "hono";
import { z } from "zod";
import { ADMIN_BODY_LIMIT, changeReason, expectedVersion, forceReason, limit, publishAnswer, validJson, type AdminApp, currentAnswer, versionAnswer } from "./admin-common";
import { requireRole } from "./auth";
import { HttpError } from "./errors";
import { tenantStore } from "./tenants/durable";
import { directory, policyStore } from "./durable";
import { isolate } from "./isolate";

async function connectedNodes(env: Env): Promise<NodeRecord[]> {
  const answer = await directory(env).snapshotSince(null, 0);
  return answer.kind === "full" ? answer.nodes : [];
}

const POLICY_BODY_LIMIT = 512 * 1024;

const nodeContext = (n: NodeRecord) => ({ region: n.region, kind: n.kind, ...(n.gpu ? { gpuClass: n.gpu.class } : {}) });

export const admin = new Hono<AdminApp>();

// ---- fleet ----------------------------------------------------------------------------

admin.get("/fleet", requireRole("viewer"), async (c) => {
  const answer = await directory(c.env).snapshotSince(null, 0);
  const nodes = answer.kind === "full" ? answer.nodes : [];
  nodes.sort((a, b) => (a.region === b.region ? (a.id < b.id ? -1 : 1) : a.region < b.region ? -1 : 1));
  const ejected = new Map(isolate.outliers.ejected().map((e) => [e.id, e]));
  const now = Date.now();
  return c.json({
    version: answer.version,
    policyVersion: answer.policyVersion,
    count: nodes.length,
    nodes: nodes.map((n) => fleetEntry(n, ejected.get(n.id), now)),
  });
});

/**
 * One node as operators see it. `state` is what routing does with it: the hub's health, or
 * "ejected" while this isolate's outlier detector keeps a healthy or suspect node out
 * (ejection is per isolate, from its own proxy attempts, so other isolates may differ).
 */
function fleetEntry(n: NodeRecord, ejection: Ejection | undefined, now: number) {
  const routable = n.health === "healthy" || n.health === "suspect";
  const state = ejection && routable ? { state: "ejected", stateReason: ejection.reason, stateSince: new Date(ejection.since).toISOString() } : { state: n.health, stateReason: n.healthReason, stateSince: new Date(n.healthSince).toISOString() };
  const slowStartMs = n.health === "healthy" ? slowStartPenaltyMs(n.returnedAt, now) : 0;
  return {
    id: n.id,
    kind: n.kind,
    region: n.region,
    ...state,
    healthy: n.health === "healthy",
    health: n.health,
    healthReason: n.healthReason,
    healthSince: new Date(n.healthSince).toISOString(),
    ...(ejection ? { ejected: { since: new Date(ejection.since).toISOString(), until: new Date(ejection.until).toISOString(), ejections: ejection.ejections, reason: ejection.reason } } : {}),
    ...(slowStartMs > 0 && n.returnedAt !== undefined ? { slowStart: { since: new Date(n.returnedAt).toISOString(), until: new Date(n.returnedAt + SLOW_START_MS).toISOString(), penaltyMs: Math.round(slowStartMs) } } : {}),
    load: n.load,
    inFlight: n.inFlight,
    free: n.free,
    capacity: n.capacity,
    ...(n.gpu ? { gpu: n.gpu } : {}),
    ...(n.kind === "gpu" ? { models: n.models ?? [], pricePerGpuHour: n.pricePerGpuHour ?? null, queue: n.queue ?? 0, tokensPerSecond: n.tokensPerSecond ?? 0 } : {}),
    ...(n.partner !== undefined ? { partner: n.partner, congestion: n.congestion ?? 0 } : {}),
    ...(n.kind === "hotspot" ? { tier: n.tier ?? null, users: n.users ?? null, maxMbps: n.maxMbps ?? null } : {}),
    ...(n.geoFlag !== undefined ? { geoFlag: n.geoFlag } : {}),
    endpoint: n.endpoint,
    connectedAt: new Date(n.connectedAt).toISOString(),
  };
}

// ---- policy ---------------------------------------------------------------------------

admin.get("/policy", requireRole("viewer"), (c) => currentAnswer(c, policyStore(c.env).current()));

admin.put("/policy", requireRole("editor"), limit(POLICY_BODY_LIMIT), validJson(z.unknown()), async (c) => {
  const expected = expectedVersion(c);
  const reason = changeReason(c);
  const force = forceReason(c);
  const result = await policyStore(c.env).publish({ document: c.req.valid("json"), expectedVersion: expected, actor: c.get("actor"), reason, ...(force ? { forceReason: force } : {}) });
  return publishAnswer(c, "policy", result);
});

admin.post("/policy/validate", requireRole("editor"), limit(POLICY_BODY_LIMIT), validJson(z.unknown()), async (c) => {
  const result = validatePolicy(c.req.valid("json"));
  if (!result.ok) return c.json({ valid: false, publishable: false, errors: result.errors, violations: [] });
  const live = await policyStore(c.env).current();
  return c.json({ valid: true, publishable: result.violations.length === 0, errors: [], violations: result.violations, diff: diffPolicies(live.document, result.document) });
});

admin.post("/policy/dry-run", requireRole("editor"), limit(POLICY_BODY_LIMIT), validJson(z.unknown()), async (c) => {
  const result = validatePolicy(c.req.valid("json"));
  if (!result.ok) throw new HttpError(400, "invalid_policy", `${result.errors.length} problem(s) in the draft`, { issues: result.errors });
  const [live, nodes, tenants] = await Promise.all([policyStore(c.env).current(), connectedNodes(c.env), tenantStore(c.env).list()]);
  const before = compilePolicy(live.document, live.version);
  const after = compilePolicy(result.document, live.version + 1);
  return c.json({
    liveVersion: live.version,
    diff: diffPolicies(live.document, result.document),
    violations: result.violations,
    impact: impactMatrix(before, after),
    connectedNodes: { total: nodes.length, changes: fleetImpact(before, after, nodes.map(nodeContext)) },
    // Tenants by headquarters country (own or parent's): which node classes they gain or lose.
    tenants: { total: tenants.length, changes: tenantImpact(before, after, tenantsByHq(tenants)) },
  });
});

admin.get("/policy/versions", requireRole("viewer"), async (c) => c.json({ versions: await policyStore(c.env).list() }));

admin.get("/policy/versions/:version", requireRole("viewer"), (c) => versionAnswer(c, "policy", (v) => policyStore(c.env).get(v)));

admin.post("/policy/rollback", requireRole("editor"), limit(ADMIN_BODY_LIMIT), validJson(RollbackRequestSchema), async (c) => {
  const expected = expectedVersion(c);
  const reason = changeReason(c);
  const force = forceReason(c);
  const target = await policyStore(c.env).get(c.req.valid("json").version);
  if (target === null) throw new HttpError(404, "version_not_found", `there is no policy version ${c.req.valid("json").version}`);
  const result = await policyStore(c.env).publish({
    document: target.document,
    expectedVersion: expected,
    actor: c.get("actor"),
    reason: `rollback to v${target.version}: ${reason}`,
    action: "rollback",
    ...(force ? { forceReason: force } : {}),
  });
  return publishAnswer(c, "policy", result);
});

admin.get("/audit", requireRole("viewer"), async (c) => c.json({ entries: await policyStore(c.env).audit() }));

/** How many tenants have each headquarters country, counting a parent's headquarters too. */
function tenantsByHq(tenants: readonly { hqCountry: string; parentHqCountry?: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of tenants) for (const hq of new Set([t.hqCountry, ...(t.parentHqCountry ? [t.parentHqCountry] : [])])) counts.set(hq, (counts.get(hq) ?? 0) + 1);
  return counts;
}
