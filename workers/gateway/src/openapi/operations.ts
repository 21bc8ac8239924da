/**
 * Every route of the gateway, declared once for the OpenAPI document (see document.ts): one
 * row per method and path, with the zod schemas the route validates with. A route added to
 * the app without a row here fails workers/gateway/test/openapi.test.ts.
 */
import {
  CarrierDocumentSchema,
  CarrierPartnerSchema,
  ClientLocationSchema,
  CredentialClaimsSchema,
  EnrollmentSchema,
  JoinTokenRequestSchema,
  NodeIdSchema,
  OffloadSummaryQuerySchema,
  PartnerIdSchema,
  PolicyDocumentSchema,
  RegionIdSchema,
  RequirementsSchema,
  RollbackRequestSchema,
  TenantCreateSchema,
  TenantIdSchema,
  TenantKeyCreateSchema,
  TenantPatchSchema,
  TenantSchema,
  TenantUsageQuerySchema,
  UsageQuerySchema,
} from "@meridian/protocol";
import { z, type ZodType } from "zod";
import { ExplainQuerySchema, SignInSchema } from "../console";

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "ALL";
/** Who may call: a role of the admin API (a bearer token or the console's session), a node, a join token, or anyone. */
export type Auth = "viewer" | "editor" | "admin" | "node" | "join" | "public";
/** Request headers an operation reads; document.ts turns each into parameters. */
export type HeaderSet = "ifMatch" | "reason" | "force" | "client";

export interface Success {
  status: number;
  description: string;
  schema?: ZodType;
  /** Default application/json; an empty list means no body. */
  media?: readonly string[];
}

export interface Operation {
  method: Method;
  /** OpenAPI form: `/admin/nodes/{id}/revoke`; a trailing `{path}` stands for hono's `*`. */
  path: string;
  tag: string;
  summary: string;
  description?: string;
  auth?: Auth;
  params?: Readonly<Record<string, ZodType>>;
  query?: ZodType;
  headers?: readonly HeaderSet[];
  body?: ZodType;
  ok: Success;
  /** Errors beyond those document.ts derives from auth, body, query and headers: status -> codes. */
  errors?: Readonly<Record<number, readonly string[]>>;
}

/** Component names of the schemas that appear in more than one place. */
export const NAMED_SCHEMAS: readonly (readonly [ZodType, string])[] = [
  [EnrollmentSchema, "Enrollment"],
  [JoinTokenRequestSchema, "JoinTokenRequest"],
  [PolicyDocumentSchema, "PolicyDocument"],
  [CarrierDocumentSchema, "CarrierDocument"],
  [CarrierPartnerSchema, "CarrierPartner"],
  [RollbackRequestSchema, "RollbackRequest"],
  [UsageQuerySchema, "UsageQuery"],
  [OffloadSummaryQuerySchema, "OffloadSummaryQuery"],
  [RequirementsSchema, "Requirements"],
  [ClientLocationSchema, "ClientLocation"],
  [NodeIdSchema, "NodeId"],
  [PartnerIdSchema, "PartnerId"],
  [RegionIdSchema, "RegionId"],
];

// Answers whose shape a schema states; the gateway test checks real answers against them.
const versioned = <T extends ZodType>(document: T) => z.object({ version: z.int().min(1), createdAt: z.iso.datetime(), actor: z.string(), reason: z.string(), document });
const PolicyAnswer = versioned(PolicyDocumentSchema);
const PolicyVersionAnswer = versioned(PolicyDocumentSchema).extend({ forced: z.boolean() });
const CarriersAnswer = versioned(CarrierDocumentSchema);
const CarriersVersionAnswer = versioned(CarrierDocumentSchema).extend({ forced: z.boolean() });
const PartnerAnswer = z.object({ version: z.int().min(1), partner: CarrierPartnerSchema });
const CredentialAnswer = z.object({ credential: z.string(), credentialId: z.string(), node: CredentialClaimsSchema.omit({ v: true, iat: true, exp: true, jti: true }), expiresAt: z.iso.datetime() });
const PublishAnswer = z.object({ version: z.int().min(1), summary: z.string(), violations: z.array(z.looseObject({ message: z.string() })) });
const HealthAnswer = z.object({ status: z.literal("ok"), snapshotVersion: z.number(), policyVersion: z.number().nullable() });

const VersionParam = { version: z.int().min(1) };
const PartnerParam = { id: PartnerIdSchema };
const json = (description: string, schema?: ZodType, status = 200): Success => ({ status, description, ...(schema ? { schema } : {}) });

export const OPERATIONS: readonly Operation[] = [
  // ---- operations --------------------------------------------------------------------
  { method: "GET", path: "/healthz", tag: "Operations", summary: "Liveness, with the isolate's snapshot and policy versions", ok: json("the gateway answers", HealthAnswer) },
  { method: "GET", path: "/metrics", tag: "Operations", summary: "Prometheus metrics", auth: "viewer", ok: { status: 200, description: "text exposition format 0.0.4", media: ["text/plain"] } },
  { method: "GET", path: "/openapi.json", tag: "Operations", summary: "This document (OpenAPI 3.1)", ok: json("the OpenAPI document") },

  // ---- clients -----------------------------------------------------------------------
  {
    method: "GET", path: "/route", tag: "Clients", summary: "The routing decision for this client, without proxying", headers: ["client"],
    description: "The client as located, the chosen node and fallbacks, every excluded node with its reason, and the offload decision for carrier subscribers.",
    ok: json("the decision"), errors: { 451: ["blocked_by_policy"], 503: ["no_healthy_node", "policy_unavailable"] },
  },
  {
    method: "ALL", path: "/v1/{path}", tag: "Clients", summary: "The endpoint: proxied to the nearest healthy, allowed node", headers: ["client"],
    description: "Forwarded to `<node endpoint>/v1/<path>?<query>` with bodies streamed both ways; idempotent requests fail over. `{path}` is the rest of the path, slashes included.",
    params: { path: z.string() },
    ok: { status: 200, description: "the node's answer, with x-meridian-node, x-meridian-region, x-meridian-route and x-meridian-policy-version", media: ["*/*"] },
    errors: { 451: ["blocked_by_policy"], 502: ["upstream_failed"], 503: ["no_healthy_node", "policy_unavailable", "gateway_unconfigured"], 508: ["loop_detected"] },
  },

  {
    method: "GET", path: "/v1/models", tag: "Clients", summary: "The models this client may use, answered by the gateway from the fleet", headers: ["client"],
    description: "OpenAI's list shape; each model carries `meridian: { nodes, free, regions, gpuClasses, pricePerGpuHour }` on where and how much it is available under the policy.",
    ok: json("{ object: \"list\", data: [...] }"),
  },
  {
    method: "GET", path: "/v1/models/{model}", tag: "Clients", summary: "One model, if this client may use it", headers: ["client"],
    params: { model: z.string() },
    ok: json("the model"), errors: { 404: ["model_not_found"] },
  },

  // ---- node agents -------------------------------------------------------------------
  { method: "GET", path: "/nodes/connect", tag: "Node agents", summary: "The node's WebSocket (hello, heartbeats, drain)", auth: "node", ok: { status: 101, description: "switching to the WebSocket protocol (docs/protocol.md)", media: [] }, errors: { 426: ["upgrade_required"] } },
  { method: "POST", path: "/nodes/join", tag: "Node agents", summary: "Enroll with a join token", auth: "join", body: EnrollmentSchema, ok: json("the node's credential, shown once", CredentialAnswer, 201), errors: { 400: ["endpoint_refused", "unknown_partner"], 409: ["node_exists"], 503: ["region_full"] } },
  { method: "GET", path: "/nodes/me", tag: "Node agents", summary: "The operator's self-view: what the gateway thinks of this node", auth: "node", ok: json("state, reason, load, detector and request counts") },

  // ---- admin: nodes ------------------------------------------------------------------
  { method: "POST", path: "/admin/nodes", tag: "Nodes", summary: "Enroll (or re-enroll, or move) a node", auth: "admin", body: EnrollmentSchema, ok: json("the node's credential, shown once", CredentialAnswer, 201), errors: { 400: ["endpoint_refused", "unknown_partner"], 409: ["node_exists"], 503: ["region_full"] } },
  { method: "GET", path: "/admin/nodes", tag: "Nodes", summary: "Every enrolled node with its status", auth: "viewer", ok: json("{ count, nodes }") },
  { method: "POST", path: "/admin/nodes/{id}/revoke", tag: "Nodes", summary: "Revoke a node's credential and close its socket", auth: "admin", params: { id: NodeIdSchema }, headers: ["reason"], ok: json("{ id, revoked, socketClosed, region, hub }"), errors: { 400: ["invalid_node_id"], 404: ["node_not_found"] } },
  { method: "GET", path: "/admin/hubs", tag: "Nodes", summary: "Hub cells in use: active enrolled nodes per cell of each region, and the capacity of a cell", auth: "viewer", ok: json("{ capacity, count, hubs: [{ region, cell, hub, nodes }] }") },
  { method: "GET", path: "/admin/nodes/audit", tag: "Nodes", summary: "Enrollments, moves, revocations and join-token changes", auth: "viewer", ok: json("{ entries }") },
  // ---- tenants -------------------------------------------------------------------------
  { method: "POST", path: "/admin/tenants", tag: "Tenants", summary: "Create a tenant", auth: "admin", headers: ["reason"], body: TenantCreateSchema, ok: json("the tenant", TenantSchema, 201), errors: { 409: ["tenant_exists"] } },
  { method: "GET", path: "/admin/tenants", tag: "Tenants", summary: "Every tenant", auth: "viewer", ok: json("{ tenants }") },
  { method: "GET", path: "/admin/tenants/audit", tag: "Tenants", summary: "Every tenant change: who, when, why", auth: "viewer", ok: json("{ entries }") },
  { method: "GET", path: "/admin/tenants/{id}", tag: "Tenants", summary: "One tenant", auth: "viewer", params: { id: TenantIdSchema }, ok: json("the tenant", TenantSchema), errors: { 404: ["tenant_not_found"] } },
  { method: "PATCH", path: "/admin/tenants/{id}", tag: "Tenants", summary: "Change a tenant (limits, HQ, residency)", auth: "admin", headers: ["reason"], params: { id: TenantIdSchema }, body: TenantPatchSchema, ok: json("the tenant", TenantSchema), errors: { 404: ["tenant_not_found"] } },
  { method: "DELETE", path: "/admin/tenants/{id}", tag: "Tenants", summary: "Delete a tenant (its keys stop working)", auth: "admin", headers: ["reason"], params: { id: TenantIdSchema }, ok: json("{ id, deleted }"), errors: { 404: ["tenant_not_found"] } },
  { method: "GET", path: "/admin/tenants/{id}/audit", tag: "Tenants", summary: "One tenant's changes", auth: "viewer", params: { id: TenantIdSchema }, ok: json("{ entries }") },
  { method: "POST", path: "/admin/tenants/{id}/keys", tag: "Tenants", summary: "Create an API key (the secret is shown once)", auth: "admin", headers: ["reason"], params: { id: TenantIdSchema }, body: TenantKeyCreateSchema, ok: json("{ id, key, prefix, ... }", undefined, 201), errors: { 404: ["tenant_not_found"] } },
  { method: "GET", path: "/admin/tenants/{id}/keys", tag: "Tenants", summary: "Key ids, prefixes, created and last used", auth: "viewer", params: { id: TenantIdSchema }, ok: json("{ keys }") },
  { method: "DELETE", path: "/admin/tenants/{id}/keys/{keyId}", tag: "Tenants", summary: "Revoke a key (everywhere within 1 s)", auth: "admin", headers: ["reason"], params: { id: TenantIdSchema, keyId: z.string() }, ok: json("{ id, revoked }"), errors: { 404: ["key_not_found"] } },
  { method: "GET", path: "/admin/tenants/{id}/usage", tag: "Tenants", summary: "Exact usage: requests, bytes, tokens (json or csv)", auth: "viewer", params: { id: TenantIdSchema }, query: TenantUsageQuerySchema, ok: { status: 200, description: "usage rows and totals", media: ["application/json", "text/csv"] } },
  { method: "POST", path: "/admin/tenants/{id}/ledger/crash", tag: "Tenants", summary: "Local chaos hook: restart the tenant's usage ledger (DEV_CHAOS_HOOKS only)", auth: "admin", params: { id: TenantIdSchema }, ok: json("{ crashed }"), errors: { 404: ["not_found"] } },

  { method: "POST", path: "/admin/join-tokens", tag: "Nodes", summary: "Create a join token (shown once)", auth: "admin", body: JoinTokenRequestSchema, ok: json("{ token, id, scope, usesLeft, expiresAt, ... }", undefined, 201) },
  { method: "GET", path: "/admin/join-tokens", tag: "Nodes", summary: "Live join tokens (never the token itself)", auth: "viewer", ok: json("{ tokens }") },
  { method: "DELETE", path: "/admin/join-tokens/{id}", tag: "Nodes", summary: "Revoke a join token", auth: "admin", params: { id: z.string() }, ok: json("{ id, revoked }"), errors: { 404: ["join_token_not_found"] } },
  { method: "GET", path: "/admin/fleet", tag: "Nodes", summary: "Every connected node as routing sees it", auth: "viewer", ok: json("{ version, policyVersion, count, nodes }") },

  // ---- admin: policy -----------------------------------------------------------------
  { method: "GET", path: "/admin/policy", tag: "Policy", summary: "The live policy, with its ETag", auth: "viewer", ok: json("the live version", PolicyAnswer) },
  { method: "PUT", path: "/admin/policy", tag: "Policy", summary: "Publish a policy document", auth: "editor", body: PolicyDocumentSchema, headers: ["ifMatch", "reason", "force"], ok: json("the new version, with its ETag", PublishAnswer), errors: { 400: ["invalid_policy"], 422: ["policy_violations"] } },
  { method: "POST", path: "/admin/policy/validate", tag: "Policy", summary: "Validate a draft and diff it against the live version", auth: "editor", body: PolicyDocumentSchema, ok: json("{ valid, publishable, errors, violations, diff }") },
  { method: "POST", path: "/admin/policy/dry-run", tag: "Policy", summary: "A draft's impact on clients and connected nodes", auth: "editor", body: PolicyDocumentSchema, ok: json("{ liveVersion, diff, violations, impact, connectedNodes }"), errors: { 400: ["invalid_policy"] } },
  { method: "GET", path: "/admin/policy/versions", tag: "Policy", summary: "Every published version, newest first", auth: "viewer", ok: json("{ versions }") },
  { method: "GET", path: "/admin/policy/versions/{version}", tag: "Policy", summary: "One version with its document", auth: "viewer", params: VersionParam, ok: json("the version, with its ETag", PolicyVersionAnswer), errors: { 400: ["invalid_version"], 404: ["version_not_found"] } },
  { method: "POST", path: "/admin/policy/rollback", tag: "Policy", summary: "Publish an earlier version's document again", auth: "editor", body: RollbackRequestSchema, headers: ["ifMatch", "reason", "force"], ok: json("the new version, with its ETag", PublishAnswer), errors: { 400: ["invalid_policy"], 404: ["version_not_found"], 422: ["policy_violations"] } },
  { method: "GET", path: "/admin/audit", tag: "Policy", summary: "The policy's audit log, newest first", auth: "viewer", ok: json("{ entries }") },

  // ---- admin: carriers and the offload ledger ---------------------------------------
  { method: "GET", path: "/admin/carriers", tag: "Carriers", summary: "The live carrier partners document, with its ETag", auth: "viewer", ok: json("the live version", CarriersAnswer) },
  { method: "PUT", path: "/admin/carriers", tag: "Carriers", summary: "Publish the carrier partners document", auth: "admin", body: CarrierDocumentSchema, headers: ["ifMatch", "reason"], ok: json("the new version, with its ETag", PublishAnswer), errors: { 400: ["invalid_document"] } },
  { method: "GET", path: "/admin/carriers/versions", tag: "Carriers", summary: "Every published version, newest first", auth: "viewer", ok: json("{ versions }") },
  { method: "GET", path: "/admin/carriers/versions/{version}", tag: "Carriers", summary: "One version with its document", auth: "viewer", params: VersionParam, ok: json("the version, with its ETag", CarriersVersionAnswer), errors: { 400: ["invalid_version"], 404: ["version_not_found"] } },
  { method: "POST", path: "/admin/carriers/rollback", tag: "Carriers", summary: "Publish an earlier version's document again", auth: "admin", body: RollbackRequestSchema, headers: ["ifMatch", "reason"], ok: json("the new version, with its ETag", PublishAnswer), errors: { 400: ["invalid_document"], 404: ["version_not_found"] } },
  { method: "GET", path: "/admin/carriers/audit", tag: "Carriers", summary: "The carriers' audit log, newest first", auth: "viewer", ok: json("{ entries }") },
  { method: "GET", path: "/admin/carriers/{id}", tag: "Carriers", summary: "One partner in the live version", auth: "viewer", params: PartnerParam, ok: json("the partner, with the version's ETag", PartnerAnswer), errors: { 400: ["invalid_partner_id"], 404: ["unknown_partner"] } },
  { method: "PUT", path: "/admin/carriers/{id}", tag: "Carriers", summary: "Create or replace one partner (the body's id may be left out)", auth: "admin", params: PartnerParam, body: CarrierPartnerSchema, headers: ["ifMatch", "reason"], ok: json("the new version, with its ETag", PublishAnswer), errors: { 400: ["invalid_partner_id", "invalid_document"] } },
  { method: "DELETE", path: "/admin/carriers/{id}", tag: "Carriers", summary: "Remove one partner", auth: "admin", params: PartnerParam, headers: ["ifMatch", "reason"], ok: json("the new version, with its ETag", PublishAnswer), errors: { 400: ["invalid_partner_id", "invalid_document"], 404: ["unknown_partner"] } },
  { method: "GET", path: "/admin/offload/usage", tag: "Carriers", summary: "A partner's ledger by hour, for settlement (JSON or CSV)", auth: "viewer", query: UsageQuerySchema, ok: { status: 200, description: "{ partner, from, to, totals, rows }, or CSV with format=csv", media: ["application/json", "text/csv"] }, errors: { 404: ["unknown_partner"] } },
  { method: "GET", path: "/admin/offload/summary", tag: "Carriers", summary: "Offload share per partner and subscriber region", auth: "viewer", query: OffloadSummaryQuerySchema, ok: json("{ from, to, partners }") },
  { method: "POST", path: "/admin/offload/ledger/{id}/crash", tag: "Carriers", summary: "Local runs only (DEV_CHAOS_HOOKS=true): restart a partner's ledger as a crash would", auth: "admin", params: PartnerParam, ok: json("{ crashed }"), errors: { 400: ["invalid_partner_id"], 404: ["not_found"] } },

  // ---- console -----------------------------------------------------------------------
  { method: "POST", path: "/console/api/session", tag: "Console", summary: "Sign in: sets the HttpOnly session cookie", body: SignInSchema, ok: json("{ role, expiresAt, csrf }"), errors: { 401: ["unauthorized"], 403: ["csrf_rejected"], 503: ["admin_disabled"] } },
  { method: "GET", path: "/console/api/session", tag: "Console", summary: "The signed-in session", ok: json("{ role, expiresAt, csrf }"), errors: { 401: ["unauthorized"], 503: ["admin_disabled"] } },
  { method: "DELETE", path: "/console/api/session", tag: "Console", summary: "Sign out", ok: { status: 204, description: "the cookie is cleared", media: [] }, errors: { 403: ["csrf_rejected"] } },
  { method: "GET", path: "/console/api/catalog", tag: "Console", summary: "Regions, GPU classes, node kinds and the documents' JSON Schemas", auth: "viewer", ok: json("{ regions, gpuClasses, nodeKinds, schemas }") },
  { method: "GET", path: "/console/api/land", tag: "Console", summary: "The map's land outline", ok: json("{ viewBox, path }") },
  { method: "GET", path: "/console/api/route", tag: "Console", summary: "/route's answer for a client the operator names", auth: "viewer", query: ExplainQuerySchema, ok: json("the decision, as GET /route answers"), errors: { 451: ["blocked_by_policy"], 503: ["no_healthy_node", "policy_unavailable"] } },
];
