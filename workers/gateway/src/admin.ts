import { zValidator } from "@hono/zod-validator";
import { compilePolicy, diffPolicies, fleetImpact, impactMatrix, validatePolicy } from "@meridian/policy";
import { EnrollmentSchema, type NodeRecord } from "@meridian/protocol";
import { SLOW_START_MS, slowStartPenaltyMs, type Ejection } from "@meridian/routing";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z, type ZodType } from "zod";
import { hasRole, requireRole, type AdminVariables } from "./auth";
import { issueCredential } from "./credentials";
import type { Env } from "./env";
import { HttpError } from "./errors";
import { outliers } from "./outliers";
import type { PublishResult } from "./policy-store";

type AdminApp = { Bindings: Env; Variables: AdminVariables };

const ADMIN_BODY_LIMIT = 64 * 1024;
const POLICY_BODY_LIMIT = 512 * 1024;

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

const limit = (maxSize: number) =>
  bodyLimit({
    maxSize,
    onError: () => {
      throw new HttpError(413, "body_too_large", `this request body is limited to ${maxSize} bytes`);
    },
  });

const directory = (env: Env) => env.DIRECTORY.get(env.DIRECTORY.idFromName("global"));
const policyStore = (env: Env) => env.POLICY_STORE.get(env.POLICY_STORE.idFromName("global"));
const etag = (version: number) => `"v${version}"`;

/** If-Match is required for every write: it names the version the editor started from. */
function expectedVersion(c: Context<AdminApp>): number {
  const header = c.req.header("if-match");
  if (header === undefined) throw new HttpError(428, "precondition_required", 'send If-Match with the ETag of the version you edited (e.g. "v3")');
  const match = /^(?:W\/)?"v(\d+)"$/.exec(header.trim());
  if (match?.[1] === undefined) throw new HttpError(412, "version_conflict", `If-Match ${header} is not a policy ETag`);
  return Number(match[1]);
}

function changeReason(c: Context<AdminApp>): string {
  const reason = c.req.header("x-meridian-reason")?.trim();
  if (!reason) throw new HttpError(400, "reason_required", "send x-meridian-reason: why this change is made (it goes to the audit log)");
  return reason.slice(0, 500);
}

/** x-meridian-force: <reason> publishes despite invariant violations; admins only. */
function forceReason(c: Context<AdminApp>): string | undefined {
  const force = c.req.header("x-meridian-force")?.trim();
  if (!force) return undefined;
  if (!hasRole(c.get("role"), "admin")) throw new HttpError(403, "forbidden", "only the admin role may force a publish");
  return force.slice(0, 500);
}

function publishAnswer(c: Context<AdminApp>, result: PublishResult) {
  if (result.ok) {
    c.header("etag", etag(result.version));
    return c.json({ version: result.version, summary: result.summary, violations: result.violations });
  }
  switch (result.kind) {
    case "conflict":
      throw new HttpError(412, "version_conflict", `the live policy is version ${result.currentVersion}; reload, reapply your change and retry`, { currentVersion: result.currentVersion });
    case "invalid":
      throw new HttpError(400, "invalid_policy", `${result.errors.length} problem(s): ${result.errors.map((e) => `${e.path ?? ""} ${e.message}`.trim()).join("; ")}`, { issues: result.errors });
    case "violations":
      throw new HttpError(422, "policy_violations", `the document breaks ${result.violations.length} invariant(s); fix it, or publish with x-meridian-force: <reason> as admin`, { violations: result.violations });
  }
}

async function connectedNodes(env: Env): Promise<NodeRecord[]> {
  const answer = await directory(env).snapshotSince(null, 0);
  return answer.kind === "full" ? answer.nodes : [];
}

const nodeContext = (n: NodeRecord) => ({ region: n.region, kind: n.kind, ...(n.gpu ? { gpuClass: n.gpu.class } : {}) });

export const admin = new Hono<AdminApp>();

// ---- fleet ----------------------------------------------------------------------------

admin.post("/nodes", requireRole("admin"), limit(ADMIN_BODY_LIMIT), validJson(EnrollmentSchema), async (c) => {
  const enrollment = c.req.valid("json");
  const { credential, claims } = await issueCredential(c.env.NODE_CREDENTIAL_KEY, enrollment, Date.now());
  const { v: _version, iat: _issued, exp, ...node } = claims;
  return c.json({ credential, node, expiresAt: new Date(exp * 1000).toISOString() }, 201);
});

admin.get("/fleet", requireRole("viewer"), async (c) => {
  const answer = await directory(c.env).snapshotSince(null, 0);
  const nodes = answer.kind === "full" ? answer.nodes : [];
  nodes.sort((a, b) => (a.region === b.region ? (a.id < b.id ? -1 : 1) : a.region < b.region ? -1 : 1));
  const ejected = new Map(outliers.ejected().map((e) => [e.id, e]));
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
    endpoint: n.endpoint,
    connectedAt: new Date(n.connectedAt).toISOString(),
  };
}

// ---- policy ---------------------------------------------------------------------------

admin.get("/policy", requireRole("viewer"), async (c) => {
  const current = await policyStore(c.env).current();
  c.header("etag", etag(current.version));
  return c.json({ version: current.version, createdAt: current.createdAt, actor: current.actor, reason: current.reason, document: current.document });
});

admin.put("/policy", requireRole("editor"), limit(POLICY_BODY_LIMIT), validJson(z.unknown()), async (c) => {
  const expected = expectedVersion(c);
  const reason = changeReason(c);
  const force = forceReason(c);
  const result = await policyStore(c.env).publish({ document: c.req.valid("json"), expectedVersion: expected, actor: c.get("actor"), reason, ...(force ? { forceReason: force } : {}) });
  return publishAnswer(c, result);
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
  const [live, nodes] = await Promise.all([policyStore(c.env).current(), connectedNodes(c.env)]);
  const before = compilePolicy(live.document, live.version);
  const after = compilePolicy(result.document, live.version + 1);
  return c.json({
    liveVersion: live.version,
    diff: diffPolicies(live.document, result.document),
    violations: result.violations,
    impact: impactMatrix(before, after),
    connectedNodes: { total: nodes.length, changes: fleetImpact(before, after, nodes.map(nodeContext)) },
  });
});

admin.get("/policy/versions", requireRole("viewer"), async (c) => c.json({ versions: await policyStore(c.env).list() }));

admin.get("/policy/versions/:version", requireRole("viewer"), async (c) => {
  const version = Number(c.req.param("version"));
  if (!Number.isInteger(version) || version < 1) throw new HttpError(400, "invalid_version", "versions are positive integers");
  const found = await policyStore(c.env).get(version);
  if (found === null) throw new HttpError(404, "version_not_found", `there is no policy version ${version}`);
  c.header("etag", etag(found.version));
  return c.json(found);
});

admin.post("/policy/rollback", requireRole("editor"), limit(ADMIN_BODY_LIMIT), validJson(z.strictObject({ version: z.int().min(1) })), async (c) => {
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
  return publishAnswer(c, result);
});

admin.get("/audit", requireRole("viewer"), async (c) => c.json({ entries: await policyStore(c.env).audit() }));
