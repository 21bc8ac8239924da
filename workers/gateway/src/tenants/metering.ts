import type { Metered } from "../ledger/meter";
import { BatchedLedgerWriter } from "../ledger/writer";
import type { TenantUsageDelta } from "./ledger";
import { tenantLedger } from "./durable";

const HOUR_MS = 3600_000;

/** One served tenant request, as the ledger counts it. */
export interface TenantUsageEntry {
  hour: number;
  key: string;
  end: Metered;
}

/** The ledger entry of a request by key `key` that started at `startedAt` and ended as `end`. */
export function tenantUsageEntry(key: string, startedAt: number, end: Metered): TenantUsageEntry {
  return { hour: Math.floor(startedAt / HOUR_MS) * HOUR_MS, key, end };
}

/**
 * Per-isolate writer of the tenants' usage ledgers (one ledger per tenant, rows per hour x
 * key), batched like the offload ledger's.
 */
export class TenantUsageRecorder extends BatchedLedgerWriter<TenantUsageEntry, TenantUsageDelta> {
  constructor() {
    super({
      name: "tenant-ledger",
      keyOf: (e) => `${e.hour}|${e.key}`,
      empty: (e) => ({ hour: e.hour, key: e.key, requests: 0, bytes: 0, promptTokens: 0, completionTokens: 0, aborted: 0 }),
      add: (delta, { end }) => {
        delta.requests++;
        delta.bytes += end.bytes;
        delta.promptTokens += end.tokens?.promptTokens ?? 0;
        delta.completionTokens += end.tokens?.completionTokens ?? 0;
        if (end.aborted) delta.aborted++;
      },
      write: (env, tenant, batch) => tenantLedger(env, tenant).record({ ...batch, tenant }),
    });
  }
}
