import { hubName } from "@meridian/protocol";

/**
 * The one way to reach each Durable Object: by name, typed by the generated Env. The
 * singletons are named "global"; hubs by region cell, ledgers by partner.
 */
export const directory = (env: Env) => env.DIRECTORY.getByName("global");
export const policyStore = (env: Env) => env.POLICY_STORE.getByName("global");
export const carrierStore = (env: Env) => env.CARRIER_STORE.getByName("global");
/** The hub of one cell of a region (the NodeRegistry assigns each node its cell; see hub-cells). */
export const regionHub = (env: Env, region: string, cell: number) => env.REGION_HUB.getByName(hubName(region, cell));
/** A hub by its name as hubName made it (the Directory remembers names, not cells). */
export const hubNamed = (env: Env, name: string) => env.REGION_HUB.getByName(name);
export const offloadLedger = (env: Env, partner: string) => env.OFFLOAD_LEDGER.getByName(partner);
export const nodeRegistry = (env: Env) => env.NODE_REGISTRY.getByName("global");
