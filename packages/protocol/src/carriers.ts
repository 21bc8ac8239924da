import { z } from "zod";
import { HotspotTierSchema, PartnerIdSchema, RegionIdSchema } from "./common";
import { safeText } from "./text";

/** Percent of eligible traffic sent to hotspots. */
const Percent = z.number().min(0).max(100);
const Share = z.number().min(0).max(1);

/**
 * When a partner's subscriber traffic may go to a community hotspot instead of the
 * partner's backbone. The dial is the share of eligible subscribers offloaded; it rises from
 * `base` toward `max` while the backbone serving them reports congestion at or above
 * `congestionThreshold`, and only falls back once congestion drops below
 * `congestionThreshold - hysteresis`.
 */
export const OffloadRulesSchema = z
  .strictObject({
    /** Hotspots farther than this from the subscriber are not used. */
    maxHotspotKm: z.number().min(0).max(5000),
    /** Weakest hotspot throughput tier accepted (1..5). */
    minTier: HotspotTierSchema,
    congestionThreshold: Share,
    /** Congestion must fall this far below the threshold before the dial returns to base. */
    hysteresis: z.number().min(0).max(0.5),
    dial: z.strictObject({ base: Percent, max: Percent }),
  })
  .refine((r) => r.dial.base <= r.dial.max, { message: "dial.base must not exceed dial.max", path: ["dial", "base"] })
  .refine((r) => r.hysteresis <= r.congestionThreshold, { message: "hysteresis must not exceed congestionThreshold", path: ["hysteresis"] });
export type OffloadRules = z.infer<typeof OffloadRulesSchema>;

export const CarrierPartnerSchema = z
  .strictObject({
    id: PartnerIdSchema,
    name: safeText(z.string().min(1).max(200)),
    /** Catalog regions whose subscribers the partner serves; offload is considered there only. */
    regions: z.array(RegionIdSchema).min(1).max(500),
    offload: OffloadRulesSchema,
  })
  .refine((p) => new Set(p.regions).size === p.regions.length, { message: "regions must not repeat", path: ["regions"] });
export type CarrierPartner = z.infer<typeof CarrierPartnerSchema>;

/** Every carrier partner: one versioned, audited document, like the policy. */
export const CarrierDocumentSchema = z
  .strictObject({ partners: z.array(CarrierPartnerSchema).max(1000) })
  .refine((d) => new Set(d.partners.map((p) => p.id)).size === d.partners.length, { message: "partner ids must be unique", path: ["partners"] });
export type CarrierDocument = z.infer<typeof CarrierDocumentSchema>;

/** GET /admin/offload/usage query. Hours are ISO timestamps; `to` is exclusive. */
export const UsageQuerySchema = z
  .strictObject({
    partner: PartnerIdSchema,
    from: z.iso.datetime({ offset: true }),
    to: z.iso.datetime({ offset: true }),
    format: z.enum(["json", "csv"]).default("json"),
  })
  .refine((q) => Date.parse(q.from) < Date.parse(q.to), { message: "from must be before to", path: ["to"] })
  .refine((q) => Date.parse(q.to) - Date.parse(q.from) <= 366 * 24 * 3600_000, { message: "at most 366 days per query", path: ["to"] });
export type UsageQuery = z.infer<typeof UsageQuerySchema>;

/** GET /admin/offload/summary query: the last 24 hours unless told otherwise. */
export const OffloadSummaryQuerySchema = z.strictObject({
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
});
