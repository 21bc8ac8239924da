import { NodeIdSchema, type GpuClass, type GpuHardware, type NodeKind } from "@meridian/protocol";
import { REGIONS } from "@meridian/regions";
import { hashString, randomInt, seededRandom } from "./random";

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

/**
 * Models the simulated fleet serves. A model runs on a card with at least `minCardVramGb` (one
 * copy per card, quantised as served in practice) and, for the largest, a server with at least
 * `minTotalVramGb` across its cards. `tokenCost` scales the node's time per token (bigger is slower).
 */
export interface SimulatedModel {
  id: string;
  minCardVramGb: number;
  minTotalVramGb: number;
  tokenCost: number;
}
export const SIMULATED_MODELS: readonly SimulatedModel[] = [
  { id: "llama-3.1-8b-instruct", minCardVramGb: 16, minTotalVramGb: 16, tokenCost: 1 },
  { id: "mistral-7b-instruct", minCardVramGb: 16, minTotalVramGb: 16, tokenCost: 1 },
  { id: "qwen2.5-32b-instruct", minCardVramGb: 48, minTotalVramGb: 48, tokenCost: 2 },
  { id: "llama-3.3-70b-instruct", minCardVramGb: 80, minTotalVramGb: 80, tokenCost: 3 },
  { id: "deepseek-v3", minCardVramGb: 141, minTotalVramGb: 640, tokenCost: 4 },
];

/** The simulated models that fit this hardware (small ones everywhere, large ones where VRAM allows). */
export function modelsFor(gpu: GpuHardware): string[] {
  return SIMULATED_MODELS.filter((m) => gpu.vramGb >= m.minCardVramGb && gpu.vramGb * gpu.count >= m.minTotalVramGb).map((m) => m.id);
}

/** Typical rented price of one GPU-hour per class, USD; each simulated node varies by up to ±25 %. */
export const SIMULATED_GPU_HOUR_USD: Readonly<Record<GpuClass, number>> = {
  b200: 4.5,
  gb200: 5,
  h200: 3.2,
  h100: 2.2,
  h800: 2,
  h20: 1.1,
  a100: 1.3,
  a800: 1.2,
  mi300x: 2.1,
  mi325x: 2.6,
  l40s: 0.85,
  l4: 0.45,
  rtx4090: 0.35,
  rtx4090d: 0.32,
  rtx4080: 0.25,
};

/** A node's simulated price: its class's, varied by its id (not by the plan's PRNG, so plans do not change). */
export function simulatedPrice(id: string, gpuClass: GpuClass): number {
  const spread = ((hashString(`price:${id}`) % 1001) / 1000 - 0.5) / 2;
  return Math.round(SIMULATED_GPU_HOUR_USD[gpuClass] * (1 + spread) * 100) / 100;
}

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
    fleet.push(
      gpu
        ? { id, kind: "gpu", region, gpu: { ...gpu }, capacity, models: modelsFor(gpu), pricePerGpuHour: simulatedPrice(id, gpu.class) }
        : { id, kind: "hotspot", region, capacity },
    );
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

/** Who a node is; `region` may be learnt late (from the gateway's welcome). */
export interface NodeIdentity {
  id: string;
  kind: NodeKind;
  region: string;
  gpu?: GpuHardware;
  capacity: number;
  /** Carrier backbone nodes: the partner they belong to. */
  partner?: string;
  /** Hotspots: enrolled backhaul, Mbit/s. */
  maxMbps?: number;
  /** GPU nodes: the models served (default: one, `meridian-<class>`). */
  models?: readonly string[];
  /** GPU nodes: price per GPU-hour to enroll with (signed into the credential). */
  pricePerGpuHour?: number;
}
