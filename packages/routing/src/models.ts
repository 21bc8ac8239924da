import type { NodeRecord } from "@meridian/protocol";
import type { FleetIndex } from "./fleet-index";

/** One model as `/v1/models` lists it: where and how much of it a client may use. */
export interface ModelAvailability {
  id: string;
  /** Nodes advertising it that may serve this client (healthy or suspect, i.e. routable). */
  nodes: number;
  /** Of those, request slots free right now. */
  free: number;
  regions: string[];
  gpuClasses: string[];
  /** Cheapest and dearest enrolled price per GPU-hour among them (null: none priced). */
  minPricePerGpuHour: number | null;
  maxPricePerGpuHour: number | null;
}

/**
 * The models of the routable nodes that `mayServe` admits (the client's policy, later its
 * tenant's), each with its availability, sorted by id. `permits` narrows the model ids
 * themselves (a tenant's model list). O(fleet): for listings, not for routing.
 */
export function modelCatalog(index: FleetIndex, mayServe: (node: NodeRecord) => boolean, permits: (model: string) => boolean = () => true): ModelAvailability[] {
  const byModel = new Map<string, { nodes: number; free: number; regions: Set<string>; gpuClasses: Set<string>; min: number; max: number }>();
  for (const node of index.records) {
    if (node === undefined || node.models === undefined || node.models.length === 0) continue;
    if (node.health !== "healthy" && node.health !== "suspect") continue;
    if (!mayServe(node)) continue;
    for (const model of node.models) {
      if (!permits(model)) continue;
      let entry = byModel.get(model);
      if (entry === undefined) {
        entry = { nodes: 0, free: 0, regions: new Set(), gpuClasses: new Set(), min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY };
        byModel.set(model, entry);
      }
      entry.nodes++;
      entry.free += Math.max(0, node.free);
      entry.regions.add(node.region);
      if (node.gpu !== undefined) entry.gpuClasses.add(node.gpu.class);
      if (node.pricePerGpuHour !== undefined) {
        entry.min = Math.min(entry.min, node.pricePerGpuHour);
        entry.max = Math.max(entry.max, node.pricePerGpuHour);
      }
    }
  }
  return [...byModel.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, e]) => ({
      id,
      nodes: e.nodes,
      free: e.free,
      regions: [...e.regions].sort(),
      gpuClasses: [...e.gpuClasses].sort(),
      minPricePerGpuHour: Number.isFinite(e.min) ? e.min : null,
      maxPricePerGpuHour: Number.isFinite(e.max) ? e.max : null,
    }));
}
