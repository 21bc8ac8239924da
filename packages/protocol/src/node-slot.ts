import { GPU_CLASSES, type GpuClass, type NodeKind } from "./common";

const GPU_CLASS_CODE = new Map<GpuClass, number>(GPU_CLASSES.map((c, i) => [c, i + 1]));
/** Dense code of a GPU class: 1..n in GPU_CLASSES order, 0 for "no GPU". */
export function gpuClassCode(gpuClass: GpuClass | undefined): number {
  return gpuClass === undefined ? 0 : (GPU_CLASS_CODE.get(gpuClass) ?? 0);
}

/**
 * A node's policy slot: what a policy can tell apart between nodes of one region (kind and
 * GPU class). 0 for a hotspot, 1 for a carrier backbone node, 2..n+1 for GPU classes, n + 2
 * for a GPU of no known class. Nodes of one region and slot share every policy verdict, so
 * verdicts are kept per (region, slot) and routing skips a region whose slots are all refused.
 */
export const SLOT_COUNT = GPU_CLASSES.length + 3;

export function slotOf(kind: NodeKind, gpuClass: GpuClass | undefined): number {
  return slotOfCode(kind, gpuClass, gpuClassCode(gpuClass));
}

/** slotOf for a caller that has looked up `gpuClassCode(gpuClass)` already (the fleet index, per change). */
export function slotOfCode(kind: NodeKind, gpuClass: GpuClass | undefined, classCode: number): number {
  if (kind === "hotspot") return 0;
  if (kind === "carrier") return 1;
  return gpuClass === undefined ? SLOT_COUNT - 1 : 1 + classCode;
}

/** The node kind and class a slot stands for (the inverse of slotOf). */
export function slotContext(slot: number): { kind: NodeKind; gpuClass?: GpuClass } {
  if (slot === 0) return { kind: "hotspot" };
  if (slot === 1) return { kind: "carrier" };
  const gpuClass = GPU_CLASSES[slot - 2];
  return gpuClass === undefined ? { kind: "gpu" } : { kind: "gpu", gpuClass };
}
