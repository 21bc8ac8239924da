import { z } from "zod";
import { GpuClassSchema, GpuHardwareSchema, ModelIdSchema, ModelListSchema, NodeIdSchema, NodeKindSchema, PartnerIdSchema, PricePerGpuHourSchema, RegionIdSchema } from "./common";
import { safeText } from "./text";

/** POST /admin/nodes */
export const EnrollmentSchema = z
  .strictObject({
    id: NodeIdSchema,
    kind: NodeKindSchema,
    region: RegionIdSchema,
    gpu: GpuHardwareSchema.optional(),
    capacity: z.int().min(1).max(100_000),
    /** Carrier nodes only: the partner whose backbone this is. */
    partner: PartnerIdSchema.optional(),
    /** Hotspots only: enrolled backhaul in Mbit/s; caps the tier it may claim and the bytes it is credited. */
    maxMbps: z.int().min(1).max(100_000).optional(),
    /** Credential lifetime; at most a year. */
    ttlDays: z.int().min(1).max(366).default(90),
    /** Where the node will serve, checked against the endpoint rules now (and at every hello). */
    endpoint: z.string().max(2048).optional(),
    /** Enrolling an id that is enrolled in another region moves it: its old credential is revoked. */
    move: z.boolean().optional(),
    /** GPU nodes: price of one GPU-hour in USD, signed into the credential (cost steering ranks by it). */
    pricePerGpuHour: PricePerGpuHourSchema.optional(),
    /** GPU nodes: when set, the only models the node may advertise (others in its hello are dropped). */
    models: ModelListSchema.optional(),
  })
  .refine((e) => (e.kind === "gpu") === (e.gpu !== undefined), {
    message: "gpu hardware is required for kind gpu and not allowed for other kinds",
    path: ["gpu"],
  })
  .refine((e) => (e.kind === "carrier") === (e.partner !== undefined), {
    message: "partner is required for kind carrier and not allowed for other kinds",
    path: ["partner"],
  })
  .refine((e) => e.kind === "hotspot" || e.maxMbps === undefined, {
    message: "maxMbps is for hotspots only",
    path: ["maxMbps"],
  })
  .refine((e) => e.kind === "gpu" || (e.pricePerGpuHour === undefined && e.models === undefined), {
    message: "pricePerGpuHour and models are for GPU nodes only",
    path: ["pricePerGpuHour"],
  });
export type Enrollment = z.infer<typeof EnrollmentSchema>;

/** What a node credential vouches for; signed by the gateway, presented as a bearer token. */
export const CredentialClaimsSchema = z.strictObject({
  v: z.literal(1),
  id: NodeIdSchema,
  kind: NodeKindSchema,
  region: safeText(),
  gpu: GpuHardwareSchema.optional(),
  capacity: z.int().min(1),
  partner: PartnerIdSchema.optional(),
  maxMbps: z.int().min(1).optional(),
  pricePerGpuHour: PricePerGpuHourSchema.optional(),
  models: ModelListSchema.optional(),
  /** Credential id: revocation names it, and the node's request-signing key derives from it. */
  jti: z.string().min(8).max(64),
  /** Issued at / expires at, seconds since the epoch. */
  iat: z.int(),
  exp: z.int(),
});
export type CredentialClaims = z.infer<typeof CredentialClaimsSchema>;

/** Request requirements, from the x-meridian-* headers (and the model from an OpenAI body). */
export const RequirementsSchema = z.strictObject({
  kind: NodeKindSchema.optional(),
  gpuClass: GpuClassSchema.optional(),
  minVramGb: z.coerce.number().int().min(1).max(4096).optional(),
  /** Only nodes advertising this model may serve. */
  model: ModelIdSchema.optional(),
  /** x-meridian-max-price: nodes priced above this (USD per GPU-hour), or unpriced, may not serve. */
  maxPrice: z.coerce.number().min(0).max(1000).optional(),
});
export type Requirements = z.infer<typeof RequirementsSchema>;

/** Client location, from request.cf (or the dev-only x-client-* headers). */
export const ClientLocationSchema = z.strictObject({
  lat: z.coerce.number().min(-90).max(90),
  lon: z.coerce.number().min(-180).max(180),
  country: z
    .string()
    .regex(/^[A-Z]{2}$|^T1$/)
    .optional(),
  /** Full ISO 3166-2 code, e.g. UA-43. */
  subdivision: z
    .string()
    .regex(/^[A-Z]{2}-[A-Z0-9]{1,3}$/)
    .optional(),
});
export type ClientLocation = z.infer<typeof ClientLocationSchema>;

/** suspect: silent for a while, still routable as a last choice; down: not routed. */
export const NodeHealthSchema = z.enum(["healthy", "suspect", "draining", "down"]);
export type NodeHealth = z.infer<typeof NodeHealthSchema>;

/** POST /admin/join-tokens: what enrollments the token admits, how often and for how long. */
export const JoinTokenRequestSchema = z.strictObject({
  scope: z.strictObject({
    regions: z.array(RegionIdSchema).min(1).max(200).optional(),
    kinds: z.array(NodeKindSchema).min(1).optional(),
    gpuClasses: z.array(GpuClassSchema).min(1).optional(),
    maxCapacity: z.int().min(1).max(100_000).optional(),
    maxGpus: z.int().min(1).max(64).optional(),
    partner: PartnerIdSchema.optional(),
  }),
  /** Enrollments it admits (1: single-use). */
  uses: z.int().min(1).max(10_000).default(1),
  /** Lifetime in seconds: at least a minute, at most 30 days. */
  ttlSeconds: z.int().min(60).max(30 * 86_400).default(3600),
  note: safeText(z.string().max(200)).optional(),
});
export type JoinTokenRequest = z.infer<typeof JoinTokenRequestSchema>;

/** POST /admin/policy/rollback and /admin/carriers/rollback: the version to publish again. */
export const RollbackRequestSchema = z.strictObject({ version: z.int().min(1) });
export type JoinTokenScope = JoinTokenRequest["scope"];

/** Why a join token's scope does not admit this enrollment, or null when it does. */
export function joinScopeProblem(scope: JoinTokenScope, enrollment: Enrollment): string | null {
  if (scope.regions && !scope.regions.includes(enrollment.region)) return `region ${enrollment.region} is outside the token's regions (${scope.regions.join(", ")})`;
  if (scope.kinds && !scope.kinds.includes(enrollment.kind)) return `kind ${enrollment.kind} is outside the token's kinds (${scope.kinds.join(", ")})`;
  if (scope.gpuClasses && enrollment.gpu && !scope.gpuClasses.includes(enrollment.gpu.class)) return `GPU class ${enrollment.gpu.class} is outside the token's classes (${scope.gpuClasses.join(", ")})`;
  if (scope.maxGpus !== undefined && enrollment.gpu && enrollment.gpu.count > scope.maxGpus) return `${enrollment.gpu.count} GPUs exceed the token's limit of ${scope.maxGpus}`;
  if (scope.maxCapacity !== undefined && enrollment.capacity > scope.maxCapacity) return `capacity ${enrollment.capacity} exceeds the token's limit of ${scope.maxCapacity}`;
  if (enrollment.partner !== undefined && enrollment.partner !== scope.partner) return `partner ${enrollment.partner} is not the token's partner`;
  if (enrollment.move) return "a join token cannot move a node: an admin does that";
  return null;
}
