import { z } from "zod";
import { GpuClassSchema, NodeKindSchema } from "./common";
import { safeText } from "./text";

/**
 * A region policy document: named groups plus ordered rules. Deny overrides allow; when no
 * rule matches, `defaultEffect` decides. Group members carry their legal source and date.
 */
const GroupName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "group names are lowercase a-z, 0-9 and '-'");
const GroupRef = z.string().regex(/^@[a-z0-9][a-z0-9-]{0,62}$/);
/** "XX" stands for a client whose country is unknown, "T1" for Tor (Cloudflare's code). */
export const UNKNOWN_COUNTRY = "XX";
const Country = z.string().regex(/^[A-Z]{2}$|^T1$/, "ISO 3166-1 alpha-2 code, XX (unknown) or T1 (Tor)");
const Subdivision = z.string().regex(/^[A-Z]{2}-[A-Z0-9]{1,3}$/, "ISO 3166-2 code such as UA-43");
const RegionId = z.string().regex(/^[a-z]{3}$/);
const Residency = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/);

const provenance = {
  /** Where the list comes from (statute, regulation, notice). */
  source: safeText(z.string().min(1).max(500)),
  /** Date the list was last checked against its source (YYYY-MM-DD). */
  effective: z.iso.date(),
  note: safeText(z.string().max(1000)).optional(),
};

export const PolicyGroupsSchema = z.strictObject({
  countries: z.record(GroupName, z.strictObject({ members: z.array(Country).min(1), ...provenance })).default({}),
  subdivisions: z.record(GroupName, z.strictObject({ members: z.array(Subdivision).min(1), ...provenance })).default({}),
  gpuClasses: z.record(GroupName, z.strictObject({ members: z.array(GpuClassSchema).min(1), ...provenance })).default({}),
  regions: z.record(GroupName, z.strictObject({ members: z.array(RegionId).min(1), note: safeText(z.string().max(1000)).optional() })).default({}),
});
export type PolicyGroups = z.infer<typeof PolicyGroupsSchema>;

/** Each field lists literals or @group references; a rule matches when every given field matches. */
export const PolicyMatchSchema = z.strictObject({
  clientCountry: z.array(z.union([Country, GroupRef])).min(1).optional(),
  clientSubdivision: z.array(z.union([Subdivision, GroupRef])).min(1).optional(),
  tenantHq: z.array(z.union([Country, GroupRef])).min(1).optional(),
  nodeCountry: z.array(z.union([Country, GroupRef])).min(1).optional(),
  nodeSubdivision: z.array(z.union([Subdivision, GroupRef])).min(1).optional(),
  nodeRegion: z.array(z.union([RegionId, GroupRef])).min(1).optional(),
  nodeKind: z.array(NodeKindSchema).min(1).optional(),
  gpuClass: z.array(z.union([GpuClassSchema, GroupRef])).min(1).optional(),
  residency: z.array(Residency).min(1).optional(),
});
export type PolicyMatch = z.infer<typeof PolicyMatchSchema>;

export const PolicyRuleSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  effect: z.enum(["deny", "allow"]),
  /** Shown to admins and returned to refused clients. */
  reason: safeText(z.string().min(1).max(500)),
  match: PolicyMatchSchema,
  /** The rule does not apply where any of these fields match (e.g. residency: nodes inside the EU). */
  except: PolicyMatchSchema.optional(),
});
export type PolicyRule = z.infer<typeof PolicyRuleSchema>;

export const PolicyDocumentSchema = z.strictObject({
  name: safeText(z.string().min(1).max(200)),
  description: safeText(z.string().max(5000)).optional(),
  defaultEffect: z.enum(["allow", "deny"]),
  groups: PolicyGroupsSchema,
  /** Groups whose places must be denied every node, checked before publish. */
  embargo: z
    .strictObject({ countries: z.array(GroupRef).default([]), subdivisions: z.array(GroupRef).default([]) })
    .default({ countries: [], subdivisions: [] }),
  rules: z.array(PolicyRuleSchema).max(1000),
});
export type PolicyDocument = z.infer<typeof PolicyDocumentSchema>;
export type PolicyDocumentInput = z.input<typeof PolicyDocumentSchema>;
