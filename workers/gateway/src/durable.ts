/**
 * The one way to reach each Durable Object: by name, typed by the generated Env. The
 * singletons are named "global"; hubs by region, ledgers by partner.
 */
export const directory = (env: Env) => env.DIRECTORY.getByName("global");
export const policyStore = (env: Env) => env.POLICY_STORE.getByName("global");
export const carrierStore = (env: Env) => env.CARRIER_STORE.getByName("global");
export const regionHub = (env: Env, region: string) => env.REGION_HUB.getByName(region);
export const offloadLedger = (env: Env, partner: string) => env.OFFLOAD_LEDGER.getByName(partner);
export const nodeRegistry = (env: Env) => env.NODE_REGISTRY.getByName("global");
export const livenessClock = (env: Env) => env.LIVENESS_CLOCK.getByName("global");
