import { NodeIdSchema, type GpuClass, type GpuHardware } from "@meridian/protocol";
import { REGIONS } from "@meridian/regions";
import { randomInt, seededRandom } from "./random";
import type { NodeIdentity } from "./workload";

/** Memory per GPU, GB, for every class the gateway knows (used for defaults and the simulator). */
export const GPU_VRAM_GB: Readonly<Record<GpuClass, number>> = {
  b200: 192,
  gb200: 192,
  h200: 141,
  h100: 80,
  h800: 80,
  h20: 96,
  a100: 80,
  a800: 80,
  mi300x: 192,
  mi325x: 256,
  l40s: 48,
  l4: 24,
  rtx4090: 24,
  rtx4090d: 24,
  rtx4080: 16,
};

/** Share of GPU nodes per hardware configuration, roughly what rented GPU fleets look like. */
export const SIMULATED_GPU_MIX: ReadonlyArray<{ weight: number; gpu: GpuHardware }> = [
  { weight: 25, gpu: { class: "h100", vramGb: 80, count: 8 } },
  { weight: 10, gpu: { class: "h200", vramGb: 141, count: 8 } },
  { weight: 8, gpu: { class: "b200", vramGb: 192, count: 8 } },
  { weight: 20, gpu: { class: "a100", vramGb: 80, count: 8 } },
  { weight: 25, gpu: { class: "rtx4090", vramGb: 24, count: 1 } },
  { weight: 7, gpu: { class: "l40s", vramGb: 48, count: 4 } },
  { weight: 5, gpu: { class: "mi300x", vramGb: 192, count: 8 } },
];

export const SIMULATED_GPU_SHARE = 0.6;
export const GPU_CAPACITY_RANGE = { min: 8, max: 64 } as const;
export const HOTSPOT_CAPACITY_RANGE = { min: 16, max: 128 } as const;

/** A node of a planned fleet: exactly what its workload serves as. */
export type PlannedNode = NodeIdentity;

export interface FleetPlanOptions {
  nodes: number;
  seed: number;
  prefix: string;
}

/**
 * A deterministic simulated fleet: the same options always give the same nodes.
 * Regions are dealt round-robin (in a seed-shuffled order), so every region has a node
 * as soon as `nodes >= REGIONS.length`; kinds and hardware are drawn from the mix.
 */
export function planFleet({ nodes, seed, prefix }: FleetPlanOptions): PlannedNode[] {
  if (!Number.isInteger(nodes) || nodes < 0) throw new Error(`nodes must be a non-negative integer, got ${nodes}`);
  if (REGIONS.length === 0) throw new Error("the region catalog is empty");
  const random = seededRandom(seed);
  const regionOrder = shuffled(
    REGIONS.map((region) => region.id),
    random,
  );
  const totalWeight = SIMULATED_GPU_MIX.reduce((sum, entry) => sum + entry.weight, 0);
  /** Per region and class, so ids read `sim-nrt-h100-1`, `sim-nrt-h100-2`. */
  const counters = new Map<string, number>();
  const fleet: PlannedNode[] = [];

  for (let i = 0; i < nodes; i++) {
    const region = regionOrder[i % regionOrder.length];
    if (region === undefined) throw new Error(`no region at position ${i % regionOrder.length}`);
    const gpu = random() < SIMULATED_GPU_SHARE ? pickGpu(random() * totalWeight) : undefined;
    const range = gpu ? GPU_CAPACITY_RANGE : HOTSPOT_CAPACITY_RANGE;
    const capacity = randomInt(random, range.min, range.max);
    const label = gpu ? gpu.class : "hotspot";
    const counterKey = `${region}/${label}`;
    const n = (counters.get(counterKey) ?? 0) + 1;
    counters.set(counterKey, n);

    const id = `${prefix}-${region}-${label}-${n}`;
    if (!NodeIdSchema.safeParse(id).success) {
      throw new Error(`prefix "${prefix}" gives an invalid node id "${id}" (a-z, 0-9, '-', at most 63 chars)`);
    }
    fleet.push(gpu ? { id, kind: "gpu", region, gpu: { ...gpu }, capacity } : { id, kind: "hotspot", region, capacity });
  }
  return fleet;
}

function pickGpu(point: number): GpuHardware {
  let remaining = point;
  for (const entry of SIMULATED_GPU_MIX) {
    remaining -= entry.weight;
    if (remaining < 0) return entry.gpu;
  }
  const last = SIMULATED_GPU_MIX[SIMULATED_GPU_MIX.length - 1];
  if (last === undefined) throw new Error("the simulated GPU mix is empty");
  return last.gpu;
}

/** Fisher-Yates with the given PRNG. */
function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const a = copy[i];
    const b = copy[j];
    if (a === undefined || b === undefined) continue;
    copy[i] = b;
    copy[j] = a;
  }
  return copy;
}
