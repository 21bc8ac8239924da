/** Clients as tenants: keys, headquarters, limits across isolates and exact usage (docs/api.md). */
export { authenticateTenant, tenantOf, EXPLAIN_TENANT_HEADER, INTERNAL_EXPLAIN_HEADER, internalExplainToken, type AuthenticatedTenant, type TenantVariables } from "./authenticate";
export { acquireSlot, rateLimitHeaders, type Slot } from "./limits";
export { TenantUsageRecorder, tenantUsageEntry, type TenantUsageEntry } from "./metering";
export { tenantContexts } from "./policy-context";
export { TenantLedger } from "./ledger";
export { TenantLimiter } from "./limiter";
export { TenantStore } from "./store";
