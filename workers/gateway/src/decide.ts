import type { CompiledPolicy, NodeJudge } from "@meridian/policy";
import type { CarrierPartner, NodeRecord } from "@meridian/protocol";
import {
  DialBook,
  chooseOffload,
  route,
  subscriberBucket,
  type Candidate,
  type FleetIndex,
  type NodeFilter,
  type OffloadDecision,
} from "@meridian/routing";
import { createMiddleware } from "hono/factory";
import { readClientRequest, type ClientRequest } from "./client";
import { HttpError } from "./errors";
import { isolate } from "./isolate";
import { tenantContexts, type AuthenticatedTenant, type TenantVariables } from "./tenants";

/** Seconds a client should wait when no node can take the request. */
export const RETRY_AFTER_S = "2";
/** Prefix of exclusion reasons that come from the policy (followed by the deciding rule ids). */
export const POLICY_REASON = "policy:";

/** A carrier subscriber's request: the partner and where the offload dial sent it. */
export interface CarrierDecision {
  partner: CarrierPartner;
  offload: OffloadDecision;
}

/** What the gateway decided for one client request; `/route` explains it, `/v1/*` acts on it. */
export interface Decision {
  client: ClientRequest;
  index: FleetIndex;
  policy: CompiledPolicy;
  /** The policy for this client (country, subdivision, residency). */
  judge: NodeJudge;
  /** Primary first, then fallbacks; empty when nothing may serve (see `refusal`). */
  candidates: readonly Candidate[];
  carrier: CarrierDecision | null;
  /** Who the request is made for (authenticateTenant ran first); null only for the console's explainer. */
  tenant: AuthenticatedTenant | null;
}

export type DecisionVariables = { decision: Decision } & TenantVariables;

/** `decideFor` as middleware: puts the Decision on c.var (after authenticateTenant). */
export const decide = createMiddleware<{ Bindings: Env; Variables: DecisionVariables }>(async (c, next) => {
  c.set("decision", await decideFor(c.req.raw, c.env, c.var.tenant, (p) => c.executionCtx.waitUntil(p)));
  await next();
});

/** Reads the request once and ranks the fleet under the policy for `tenant`. */
export async function decideFor(request: Request, env: Env, tenant: AuthenticatedTenant | null, waitUntil: (p: Promise<unknown>) => void): Promise<Decision> {
  const client = await readClientRequest(request, env);
  isolate.fleet.locate(client.location);
  const pending = isolate.fleet.view(env, waitUntil);
  const view = pending instanceof Promise ? await pending : pending;
  const { index, policy } = view;
  // Fail closed: without a policy nobody knows what is allowed, so nothing is routed.
  if (policy === null) throw new HttpError(503, "policy_unavailable", "no routing policy is loaded yet; nothing is routed blind", {}, { "retry-after": RETRY_AFTER_S });
  if (client.residency !== undefined && !policy.residencies.has(client.residency)) {
    throw new HttpError(400, "unknown_residency", `no rule of policy v${policy.version} enforces residency "${client.residency}"; known: ${[...policy.residencies].join(", ") || "none"}`);
  }
  const model = client.requirements.model;
  if (model !== undefined && index.modelCount(model) === 0) {
    throw new HttpError(404, "model_not_found", `The model \`${model}\` does not exist or no node serves it; GET /v1/models lists the models you can use.`, { param: "model" });
  }
  // A tenant's residency the policy does not enforce cannot be kept: fail closed.
  if (tenant?.residency !== undefined && !policy.residencies.has(tenant.residency)) {
    throw new HttpError(503, "tenant_residency_unenforced", `tenant ${tenant.id} must stay in residency "${tenant.residency}", which no rule of policy v${policy.version} enforces`, {}, { "retry-after": RETRY_AFTER_S });
  }
  const location = client.location;
  // Judged by the country and subdivision as located (never dropped), ranked from `location`;
  // with the tenant's headquarters (and its parent's) and residency, which a request may only narrow.
  const located = { country: client.country, ...(client.subdivision ? { subdivision: client.subdivision } : {}) };
  const judge = policy.forAll(tenantContexts(located, tenant, client.residency));
  // The judge keeps the one verdict cache, per (region, node slot).
  const allowed = judge.allows;
  const filter = isolate.outliers.active ? { filter: notEjected } : {};
  const partner = carrierPartner(client, view.carriers, view.carriersVersion);
  let decided: { candidates: Candidate[]; examined: number };
  let carrier: CarrierDecision | null = null;
  if (partner === null) {
    const affinity = client.affinityKey === undefined ? {} : { affinityKey: client.affinityKey };
    // A random sample spreads slow start as a share of traffic (see packages/routing).
    decided = route(index, { client: location, requirements: client.requirements, allowed, now: Date.now(), steer: client.steer, sample: Math.random(), ...affinity, ...filter });
  }
  else {
    const offload = chooseOffload(index, { client: location, partner, bucket: subscriberBucket(client.subscriber ?? ""), dials: isolate.dials, allowed, ...filter });
    carrier = { partner, offload };
    decided = offload;
  }
  isolate.metrics.observeDecision(decided.examined);
  return { client, index, policy, judge, candidates: decided.candidates, carrier, tenant };
}

/** Why nothing qualified: 451 when the policy refused nodes that could otherwise serve, else 503. */
export function refusal(decision: Decision): HttpError {
  const { client, index, carrier } = decision;
  const unrestricted =
    carrier === null
      ? route(index, { client: client.location, requirements: client.requirements, fallbacks: 0 })
      : chooseOffload(index, { client: client.location, partner: carrier.partner, bucket: 0, dials: new DialBook() });
  const nearest = unrestricted.candidates[0];
  if (nearest === undefined) {
    return new HttpError(503, "no_healthy_node", "no healthy node can serve this request right now", {}, { "retry-after": RETRY_AFTER_S });
  }
  const verdict = decision.judge(nodeContext(nearest.node));
  const rule = verdict.rules[0] ?? "unknown";
  const tenant = decision.tenant === null ? {} : { tenant: { id: decision.tenant.id, hqCountry: decision.tenant.hqCountry, ...(decision.tenant.parentHqCountry ? { parentHqCountry: decision.tenant.parentHqCountry } : {}) } };
  return new HttpError(451, "blocked_by_policy", `refused by policy v${decision.policy.version} rule ${rule}: ${decision.policy.reasonOf(rule)}`, { rule, rules: verdict.rules, policyVersion: decision.policy.version, ...tenant });
}

export const notEjected: NodeFilter = (node) => (isolate.outliers.isEjected(node.id) ? "ejected" : null);

export const nodeContext = (n: NodeRecord) => ({ region: n.region, kind: n.kind, ...(n.gpu ? { gpuClass: n.gpu.class } : {}) });

/** Why a node is out, for explanations: ejection first, then the policy (with the deciding rules). */
export function exclusionFilter(judge: NodeJudge): NodeFilter {
  return (node) => {
    const ejected = notEjected(node);
    if (ejected !== null) return ejected;
    const verdict = judge(nodeContext(node));
    return verdict.allowed ? null : `${POLICY_REASON}${verdict.rules.join(",")}`;
  };
}

/** The carrier partner named by x-meridian-carrier, or null for an ordinary request. */
function carrierPartner(client: ClientRequest, carriers: ReadonlyMap<string, CarrierPartner>, version: number): CarrierPartner | null {
  if (client.carrier === undefined) return null;
  if (client.requirements.kind !== undefined && client.requirements.kind !== "hotspot") {
    throw new HttpError(400, "invalid_requirements", "x-meridian-carrier requests are served by hotspots or the partner's backbone: send x-meridian-kind: hotspot or nothing");
  }
  const partner = carriers.get(client.carrier);
  if (partner === undefined) throw new HttpError(400, "unknown_partner", `no carrier partner "${client.carrier}" in carriers v${version}`);
  return partner;
}
