import type { NodeJudge } from "@meridian/policy";
import type { NodeRecord } from "@meridian/protocol";
import { modelCatalog, type FleetIndex, type ModelAvailability } from "@meridian/routing";
import { Hono } from "hono";
import { parseResidency, resolveClient } from "../client";
import { nodeContext, notEjected, RETRY_AFTER_S } from "../decide";
import { HttpError } from "../errors";
import { isolate } from "../isolate";
import { authenticateTenant, tenantContexts, type AuthenticatedTenant, type TenantVariables } from "../tenants";

/**
 * What a caller beyond the policy may narrow: a tenant's model list, once tenants exist. The
 * listing takes it as a parameter so the tenant resolver only has to pass it in.
 */
export interface ModelScope {
  permits(model: string): boolean;
}
export const EVERY_MODEL: ModelScope = { permits: () => true };

/**
 * `GET /v1/models`, answered by the gateway from the fleet snapshot: the models this client may
 * use under the policy (and its scope), each with where and how much of it there is, in the
 * `meridian` extension field. No node is asked: a node knows only its own models.
 */
export const modelRoutes = new Hono<{ Bindings: Env; Variables: TenantVariables }>();

// A tenant key is required here as on every /v1 path; its headquarters and residency narrow the list.
modelRoutes.use("/v1/models", authenticateTenant);
modelRoutes.use("/v1/models/*", authenticateTenant);

modelRoutes.get("/v1/models", async (c) => {
  const catalog = await catalogFor(c.req.raw, c.env, (p) => c.executionCtx.waitUntil(p), EVERY_MODEL, c.var.tenant);
  return c.json({ object: "list", data: catalog.map(modelObject) });
});

modelRoutes.get("/v1/models/:model{.+}", async (c) => {
  const id = c.req.param("model");
  const catalog = await catalogFor(c.req.raw, c.env, (p) => c.executionCtx.waitUntil(p), EVERY_MODEL, c.var.tenant);
  const entry = catalog.find((m) => m.id === id);
  if (entry === undefined) throw new HttpError(404, "model_not_found", `The model \`${id}\` does not exist or you do not have access to it.`, { param: "model" });
  return c.json(modelObject(entry));
});

/** The models `request`'s client may use: policy-allowed, routable, not ejected here, within `scope`. */
export async function catalogFor(request: Request, env: Env, waitUntil: (p: Promise<unknown>) => void, scope: ModelScope, tenant: AuthenticatedTenant | null): Promise<ModelAvailability[]> {
  const client = resolveClient(request, env);
  const residency = parseResidency(request.headers);
  const { index, policy } = await isolate.fleet.get(env, waitUntil);
  // Fail closed, as routing does: without a policy nothing is known to be allowed.
  if (policy === null) throw new HttpError(503, "policy_unavailable", "no routing policy is loaded yet; nothing is routed blind", {}, { "retry-after": RETRY_AFTER_S });
  if (residency !== undefined && !policy.residencies.has(residency)) throw new HttpError(400, "unknown_residency", `no rule of policy v${policy.version} enforces residency "${residency}"`);
  const located = { country: client.country, ...(client.subdivision ? { subdivision: client.subdivision } : {}) };
  const judge = policy.forAll(tenantContexts(located, tenant, residency));
  return listModels(index, judge, scope);
}

export function listModels(index: FleetIndex, judge: NodeJudge, scope: ModelScope): ModelAvailability[] {
  const mayServe = (node: NodeRecord) => notEjected(node) === null && judge(nodeContext(node)).allowed;
  return modelCatalog(index, mayServe, (model) => scope.permits(model));
}

/** OpenAI's model object; where the model runs goes in `meridian`, which SDKs pass through. */
function modelObject(m: ModelAvailability) {
  return {
    id: m.id,
    object: "model" as const,
    // The fleet does not know when a model was made; 0 says so rather than inventing a date.
    created: 0,
    owned_by: "meridian",
    meridian: {
      nodes: m.nodes,
      free: m.free,
      regions: m.regions,
      gpuClasses: m.gpuClasses,
      pricePerGpuHour: { min: m.minPricePerGpuHour, max: m.maxPricePerGpuHour },
    },
  };
}
