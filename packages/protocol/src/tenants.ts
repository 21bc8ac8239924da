import { z } from "zod";
import { safeText } from "./text";

/**
 * Tenants: the clients of the fleet. Each has a headquarters country (and its parent's, for a
 * subsidiary) that the policy's `tenantHq` rules judge, an optional residency every request is
 * kept in, and limits that hold across gateway isolates. Keys are held as SHA-256 hashes only.
 */
export const TenantIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "tenant ids are lowercase a-z, 0-9 and '-' (at most 63)");
/** An ISO 3166-1 alpha-2 country: where a company is headquartered is always a real country. */
export const HqCountrySchema = z.string().regex(/^[A-Z]{2}$/, "ISO 3166-1 alpha-2 code such as SG").refine((c) => c !== "XX", "XX (unknown) is not a headquarters country");
export const TenantResidencySchema = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, "a lowercase residency tag such as eu");

export const TenantLimitsSchema = z.strictObject({
  /** Token bucket: this many requests per minute, with a burst of the same size. */
  requestsPerMinute: z.int().min(1).max(1_000_000),
  /** Requests in flight at once (a streaming response holds its slot until it ends). */
  concurrentRequests: z.int().min(1).max(100_000),
  /** Tokens per calendar month (UTC), as nodes report them in `usage`; absent: no budget. */
  monthlyTokens: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  /** Response bytes per calendar month (UTC); absent: no budget. */
  monthlyBytes: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});
export type TenantLimits = z.infer<typeof TenantLimitsSchema>;

const TenantName = safeText(z.string().min(1).max(200));

/** POST /admin/tenants. Without an id one is made from a random suffix. */
export const TenantCreateSchema = z.strictObject({
  id: TenantIdSchema.optional(),
  name: TenantName,
  hqCountry: HqCountrySchema,
  parentHqCountry: HqCountrySchema.optional(),
  residency: TenantResidencySchema.optional(),
  limits: TenantLimitsSchema,
});
export type TenantCreate = z.infer<typeof TenantCreateSchema>;

/** PATCH /admin/tenants/:id: the fields to change; null clears an optional one. */
export const TenantPatchSchema = z
  .strictObject({
    name: TenantName.optional(),
    hqCountry: HqCountrySchema.optional(),
    parentHqCountry: HqCountrySchema.nullable().optional(),
    residency: TenantResidencySchema.nullable().optional(),
    limits: TenantLimitsSchema.partial().optional(),
  })
  .refine((p) => Object.keys(p).length > 0, { message: "nothing to change" });
export type TenantPatch = z.infer<typeof TenantPatchSchema>;

export const TenantSchema = z.strictObject({
  id: TenantIdSchema,
  name: TenantName,
  hqCountry: HqCountrySchema,
  parentHqCountry: HqCountrySchema.optional(),
  residency: TenantResidencySchema.optional(),
  limits: TenantLimitsSchema,
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type Tenant = z.infer<typeof TenantSchema>;

/** POST /admin/tenants/:id/keys: an optional label for people. */
export const TenantKeyCreateSchema = z.strictObject({ name: safeText(z.string().min(1).max(100)).optional() });

export const TenantUsageQuerySchema = z
  .strictObject({
    from: z.iso.datetime({ offset: true }),
    to: z.iso.datetime({ offset: true }),
    format: z.enum(["json", "csv"]).default("json"),
  })
  .refine((q) => Date.parse(q.from) < Date.parse(q.to), { message: "from must be before to", path: ["to"] })
  .refine((q) => Date.parse(q.to) - Date.parse(q.from) <= 366 * 24 * 3600_000, { message: "at most 366 days per query", path: ["to"] });

/** A tenant key as clients present it: "mk_" + 8 characters shown to people + 32 secret ones. */
export const TENANT_KEY_PREFIX = "mk_";
export const TENANT_KEY_PATTERN = /^mk_[A-Za-z0-9_-]{40}$/;
