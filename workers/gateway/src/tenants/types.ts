import type { Tenant } from "@meridian/protocol";

/** What an isolate caches for a key: the tenant it belongs to, as of the store's change `seq`. */
export interface ResolvedKey {
  keyId: string;
  hash: string;
  tenant: Tenant;
}

/** Changes since an isolate's last sync: the tenants and key hashes to drop from its cache. */
export interface TenantSync {
  seq: number;
  /** The isolate was too far behind (changes pruned): it drops its whole cache. */
  reset: boolean;
  tenants: string[];
  hashes: string[];
}

/** What the key cache needs of the TenantStore (the object's stub, or a stand-in in the benchmark). */
export interface KeyStore {
  resolve(hash: string): Promise<ResolvedKey | null>;
  sync(since: number, used: Record<string, number>): Promise<TenantSync>;
}
