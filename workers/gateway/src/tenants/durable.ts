/**
 * The tenant Durable Objects, by name: one TenantStore ("global") holds tenants and keys; one
 * TenantLimiter and one TenantLedger per tenant (named by the tenant id) hold its limits and usage.
 */
export const tenantStore = (env: Env) => env.TENANT_STORE.getByName("global");
export const tenantLimiter = (env: Env, tenant: string) => env.TENANT_LIMITER.getByName(tenant);
export const tenantLedger = (env: Env, tenant: string) => env.TENANT_LEDGER.getByName(tenant);
