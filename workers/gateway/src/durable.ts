import { hubName } from "@meridian/protocol";
import type { Continent } from "@meridian/regions";

/**
 * The one way to reach each Durable Object: by name, typed by the generated Env. The
 * singletons are named "global"; hubs by region cell, ledgers by partner, directory replicas
 * by continent.
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
export const livenessClock = (env: Env) => env.LIVENESS_CLOCK.getByName("global");

/** Where each continent's directory replica is created (a hint, taken when the object is first made). */
const REPLICA_LOCATION: Record<Continent, DurableObjectLocationHint> = { NA: "enam", SA: "sam", EU: "weur", AF: "afr", AS: "apac", OC: "oc" };
const isContinent = (name: string): name is Continent => Object.hasOwn(REPLICA_LOCATION, name);

/** The directory replica named `name`: a continent in production (with its location hint); tests use other names. */
export const directoryReplica = (env: Env, name: Continent | string) =>
  env.DIRECTORY_REPLICA.getByName(name, isContinent(name) ? { locationHint: REPLICA_LOCATION[name] } : {});
