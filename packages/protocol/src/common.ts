import { z } from "zod";
import { isRegionId } from "@meridian/regions";

/** Node ids: DNS-label-like, so they are safe in URLs, logs and headers. */
export const NodeIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{2,62}$/, "3-63 chars of a-z, 0-9 and '-', starting with a letter or digit");
export type NodeId = z.infer<typeof NodeIdSchema>;

export const NodeKindSchema = z.enum(["gpu", "hotspot"]);
export type NodeKind = z.infer<typeof NodeKindSchema>;

/**
 * GPU classes the gateway knows. A closed list on purpose: export rules name classes,
 * and a class nobody has classified must not slip past them.
 */
export const GPU_CLASSES = [
  "b200",
  "gb200",
  "h200",
  "h100",
  "h800",
  "h20",
  "a100",
  "a800",
  "mi300x",
  "mi325x",
  "l40s",
  "l4",
  "rtx4090",
  "rtx4090d",
  "rtx4080",
] as const;
export const GpuClassSchema = z.enum(GPU_CLASSES);
export type GpuClass = z.infer<typeof GpuClassSchema>;

export const RegionIdSchema = z.string().refine(isRegionId, { message: "unknown region id" });

export const GpuHardwareSchema = z.strictObject({
  class: GpuClassSchema,
  vramGb: z.int().min(1).max(1024),
  count: z.int().min(1).max(64),
});
export type GpuHardware = z.infer<typeof GpuHardwareSchema>;

/** The one error shape of every HTTP error answer. */
export const ApiErrorSchema = z.object({
  error: z.looseObject({ code: z.string(), message: z.string() }),
});
export type ApiError = z.infer<typeof ApiErrorSchema>;
