import type { GpuClass, NodeKind, NodeRecord } from "@meridian/protocol";

export function node(id: string, region: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    kind: "gpu",
    region,
    gpu: { class: "h100", vramGb: 80, count: 8 },
    capacity: 8,
    endpoint: `http://127.0.0.1:1/n/${id}`,
    health: "healthy",
    healthReason: "hello",
    healthSince: 0,
    load: 0,
    inFlight: 0,
    free: 8,
    connectedAt: 0,
    seq: 1,
    ...over,
  };
}

export function gpuNode(id: string, region: string, gpuClass: GpuClass, vramGb: number, over: Partial<NodeRecord> = {}): NodeRecord {
  return node(id, region, { gpu: { class: gpuClass, vramGb, count: 1 }, ...over });
}

export function hotspot(id: string, region: string, over: Partial<NodeRecord> = {}): NodeRecord {
  const kind: NodeKind = "hotspot";
  const { gpu: _omit, ...base } = node(id, region, over);
  return { ...base, kind };
}

/** Small deterministic PRNG (mulberry32) so random fleets are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
