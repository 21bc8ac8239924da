import { z } from "zod";
import { isRegionId } from "@meridian/regions";

/** Node ids: DNS-label-like, so they are safe in URLs, logs and headers. */
export const NodeIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{2,62}$/, "3-63 chars of a-z, 0-9 and '-', starting with a letter or digit");
export type NodeId = z.infer<typeof NodeIdSchema>;

/** gpu: compute; hotspot: community wireless; carrier: a carrier partner's backbone gateway. */
export const NodeKindSchema = z.enum(["gpu", "hotspot", "carrier"]);
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

/** Carrier partner ids: short lowercase slugs ("tmo-us"), used in headers, URLs and ledger keys. */
export const PartnerIdSchema = z.string().regex(/^[a-z][a-z0-9-]{1,31}$/, "2-32 chars of a-z, 0-9 and '-', starting with a letter");
export type PartnerId = z.infer<typeof PartnerIdSchema>;

/** Hotspot throughput tiers, 1 (weakest) to 5; see HOTSPOT_TIER_MIN_MBPS. */
export const HotspotTierSchema = z.int().min(1).max(5);
/** Backhaul a hotspot needs for each tier (index = tier - 1), in Mbit/s. */
export const HOTSPOT_TIER_MIN_MBPS = [0, 25, 100, 300, 1000] as const;
/** The best tier a hotspot with this enrolled backhaul can honestly claim. */
export function tierForMbps(mbps: number): number {
  let tier = 1;
  HOTSPOT_TIER_MIN_MBPS.forEach((min, i) => {
    if (mbps >= min) tier = i + 1;
  });
  return tier;
}
/** Enrolled backhaul of a hotspot when the enrollment does not say. */
export const DEFAULT_HOTSPOT_MBPS = 100;

export const RegionIdSchema = z.string().refine(isRegionId, { message: "unknown region id" });

export const GpuHardwareSchema = z.strictObject({
  class: GpuClassSchema,
  vramGb: z.int().min(1).max(1024),
  count: z.int().min(1).max(64),
});
export type GpuHardware = z.infer<typeof GpuHardwareSchema>;

/**
 * Model ids as OpenAI clients send them ("llama-3.1-8b-instruct", "org/model:tag"): printable,
 * no spaces, so they are safe in logs, headers and the fleet codec's string table.
 */
export const ModelIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:\/@+-]{0,127}$/, "1-128 chars of letters, digits and . _ : / @ + -");
/** Models one node may advertise: enough for a multi-model server, small enough for every snapshot. */
export const MAX_MODELS_PER_NODE = 16;
export const ModelListSchema = z
  .array(ModelIdSchema)
  .max(MAX_MODELS_PER_NODE)
  .refine((models) => new Set(models).size === models.length, { message: "model ids must be unique" });

/** Price of one GPU-hour in US dollars, as enrolled (signed into the credential). */
export const PricePerGpuHourSchema = z.number().min(0).max(1000);

/** The one error shape of every HTTP error answer. */
export const ApiErrorSchema = z.object({
  error: z.looseObject({ code: z.string(), message: z.string() }),
});
export type ApiError = z.infer<typeof ApiErrorSchema>;
