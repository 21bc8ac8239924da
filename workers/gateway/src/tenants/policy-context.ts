import type { ClientContext } from "@meridian/policy";
import type { Tenant } from "@meridian/protocol";

/**
 * The client contexts a request is judged under, all of which must allow a node: the tenant's
 * headquarters and its parent's (export rules look through subsidiaries), each with the
 * tenant's residency and the request's own (a request may narrow where it is served, never
 * widen it). Without a tenant: the located client alone.
 */
export function tenantContexts(located: ClientContext, tenant: Pick<Tenant, "hqCountry" | "parentHqCountry" | "residency"> | null, requestResidency: string | undefined): ClientContext[] {
  const hqs: (string | undefined)[] = tenant === null ? [undefined] : [tenant.hqCountry, ...(tenant.parentHqCountry !== undefined && tenant.parentHqCountry !== tenant.hqCountry ? [tenant.parentHqCountry] : [])];
  const residencies = [tenant?.residency, requestResidency].filter((r): r is string => r !== undefined);
  const places = residencies.length === 0 ? [undefined] : [...new Set(residencies)];
  return hqs.flatMap((tenantHq) => places.map((residency) => ({ ...located, ...(tenantHq !== undefined ? { tenantHq } : {}), ...(residency !== undefined ? { residency } : {}) })));
}
