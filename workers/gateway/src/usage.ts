import type { Metered } from "./ledger/meter";
import { BatchedLedgerWriter } from "./ledger/writer";
import type { UsageDelta, UsageEntry } from "./offload-ledger";
import { offloadLedger } from "./durable";

const HOUR_MS = 3600_000;

/** Bytes one hotspot with this enrolled backhaul can move in an hour: the most it is credited. */
export function hourlyCreditCap(maxMbps: number): number {
  return Math.floor((maxMbps * 1_000_000 * 3600) / 8);
}

/** One served carrier request, as the gateway knows it when the response body has ended. */
export interface ServedRequest {
  startedAt: number;
  node: string;
  region: string;
  route: UsageEntry["route"];
  end: Pick<Metered, "bytes" | "aborted">;
  flagged: boolean;
  /** The hotspot's enrolled backhaul when offloaded (its credit cap), else null. */
  creditMbps: number | null;
}

/** The ledger entry of a served request: its hour, and the credit cap of an offload. */
export function usageEntry(served: ServedRequest): UsageEntry {
  return {
    hour: Math.floor(served.startedAt / HOUR_MS) * HOUR_MS,
    node: served.node,
    region: served.region,
    route: served.route,
    bytes: served.end.bytes,
    aborted: served.end.aborted,
    flagged: served.flagged,
    creditCapBytes: served.creditMbps === null ? null : hourlyCreditCap(served.creditMbps),
  };
}

/** Per-isolate writer of the carrier partners' offload ledgers (one ledger per partner). */
export class UsageRecorder extends BatchedLedgerWriter<UsageEntry, UsageDelta> {
  constructor() {
    super({
      name: "ledger",
      keyOf: (e) => `${e.hour}|${e.node}|${e.region}|${e.route}`,
      empty: (e) => ({ hour: e.hour, node: e.node, region: e.region, route: e.route, requests: 0, bytes: 0, aborted: 0, flagged: 0, creditCapBytes: e.creditCapBytes }),
      add: (delta, e) => {
        delta.requests++;
        delta.bytes += e.bytes;
        if (e.aborted) delta.aborted++;
        if (e.flagged) delta.flagged++;
      },
      write: (env, partner, batch) => offloadLedger(env, partner).record(batch),
    });
  }
}
