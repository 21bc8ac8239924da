/**
 * The OpenAPI 3.1 document, built from the route table (operations.ts) and the zod schemas
 * the routes validate with: JSON Schema draft 2020-12 is OpenAPI 3.1's schema dialect, so
 * zod's own `z.toJSONSchema` output goes in as it is. Nothing here is hand-written JSON:
 * error answers, role requirements and the shared headers are derived from each row.
 */
import { ApiErrorSchema } from "@meridian/protocol";
import { REGION_IDS } from "@meridian/regions";
import { z, type ZodType } from "zod";
import { CSRF_HEADER, SESSION_COOKIE } from "../console/session";
import { NAMED_SCHEMAS, OPERATIONS, type Auth, type HeaderSet, type Operation } from "./operations";

type Json = Record<string, unknown>;

const ROLES = ["viewer", "editor", "admin"] as const;
export const ALL_METHODS = ["get", "post", "put", "patch", "delete", "options"] as const;

/** hono's path syntax in OpenAPI's: `:id` becomes `{id}`, a trailing `*` becomes `{path}`. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, "{$1}").replace(/\/\*$/, "/{path}");
}

/** The one error shape (errors.ts); every error body names the request id. */
export const ErrorSchema = z.object({ error: ApiErrorSchema.shape.error.extend({ requestId: z.string() }) });

/** Headers a row can ask for by name: the parameters they add and the errors they bring. */
const HEADER_SETS: Record<HeaderSet, { params: Json[]; errors: Record<number, string[]> }> = {
  ifMatch: {
    params: [{ $ref: "#/components/parameters/IfMatch" }],
    errors: { 412: ["version_conflict"], 428: ["precondition_required"] },
  },
  reason: { params: [{ $ref: "#/components/parameters/Reason" }], errors: { 400: ["reason_required", "unsafe_text"] } },
  force: { params: [{ $ref: "#/components/parameters/Force" }], errors: { 400: ["unsafe_text"], 403: ["forbidden"] } },
  client: {
    params: ["Kind", "Gpu", "MinVram", "Residency", "Carrier", "Subscriber", "ClientLat", "ClientLon", "ClientCountry", "ClientSubdivision"].map((name) => ({ $ref: `#/components/parameters/${name}` })),
    errors: { 400: ["invalid_requirements", "invalid_client_geo", "unknown_residency", "invalid_carrier", "unknown_partner", "invalid_subscriber"] },
  },
};

const AUTH_ERRORS: Record<Exclude<Auth, "public">, Record<number, string[]>> = {
  viewer: { 401: ["unauthorized"], 403: ["forbidden"], 503: ["admin_disabled"] },
  editor: { 401: ["unauthorized"], 403: ["forbidden"], 503: ["admin_disabled"] },
  admin: { 401: ["unauthorized"], 403: ["forbidden"], 503: ["admin_disabled"] },
  node: { 401: ["unauthorized", "invalid_credential", "credential_expired", "credential_revoked"], 503: ["credentials_disabled"] },
  join: { 401: ["unauthorized", "invalid_join_token", "join_token_expired", "join_token_used"], 403: ["outside_join_scope"], 503: ["credentials_disabled"] },
};

function security(auth: Auth): Json[] | undefined {
  if (auth === "public") return undefined;
  if (auth === "node") return [{ nodeCredential: [] }];
  if (auth === "join") return [{ joinToken: [] }];
  // OpenAPI 3.1 lets a non-OAuth requirement list role names: the least role the route needs.
  return [{ roleToken: [auth] }, { consoleSession: [auth] }];
}

function mergeErrors(...sets: Readonly<Record<number, readonly string[]>>[]): Map<number, string[]> {
  const merged = new Map<number, string[]>();
  for (const set of sets) {
    for (const [status, codes] of Object.entries(set)) {
      const list = merged.get(Number(status)) ?? [];
      for (const code of codes) if (!list.includes(code)) list.push(code);
      merged.set(Number(status), list);
    }
  }
  return new Map([...merged].sort(([a], [b]) => a - b));
}

function errorsOf(op: Operation): Map<number, string[]> {
  const auth = op.auth ?? "public";
  const writes = op.method !== "GET";
  return mergeErrors(
    auth === "public" ? {} : AUTH_ERRORS[auth],
    ROLES.some((r) => r === auth) && writes ? { 403: ["csrf_rejected"] } : {},
    op.body ? { 400: ["invalid_body", "invalid_json", "unsafe_text"], 413: ["body_too_large"] } : {},
    op.query ? { 400: ["invalid_query"] } : {},
    ...(op.headers ?? []).map((h) => HEADER_SETS[h].errors),
    ROLES.some((r) => r === auth) ? { 400: ["unsafe_text"] } : {},
    op.errors ?? {},
  );
}

/** `POST /admin/nodes/{id}/revoke` -> `postAdminNodesIdRevoke`. */
function operationId(method: string, path: string): string {
  const words = path.split(/[^A-Za-z0-9]+/).filter((w) => w.length > 0);
  return [method.toLowerCase(), ...words.map((w) => w[0]?.toUpperCase() + w.slice(1))].join("");
}

/** Every schema of the table, named: shared ones by NAMED_SCHEMAS, the others after their operation. */
function schemaNames(): Map<ZodType, string> {
  const names = new Map<ZodType, string>(NAMED_SCHEMAS.map(([schema, name]) => [schema, name]));
  const name = (schema: ZodType | undefined, fallback: string) => {
    if (schema !== undefined && !names.has(schema)) names.set(schema, fallback);
  };
  name(ErrorSchema, "Error");
  for (const op of OPERATIONS) {
    const id = operationId(op.method, op.path);
    const base = id[0]?.toUpperCase() + id.slice(1);
    name(op.body, `${base}Body`);
    name(op.query, `${base}Query`);
    name(op.ok.schema, `${base}Answer`);
  }
  return names;
}

/** A small unnamed schema (a path parameter), written in place. */
function inline(schema: ZodType): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: "draft-2020-12", io: "input", unrepresentable: "any" });
  return rest;
}

function isJson(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The named schemas as components, each referring to the others by $ref. */
function componentSchemas(names: Map<ZodType, string>): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [schema, id] of names) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { target: "draft-2020-12", io: "input", unrepresentable: "any", uri: (id) => `#/components/schemas/${id}` });
  const out: Record<string, Json> = {};
  for (const [id, schema] of Object.entries(schemas)) {
    const { $schema: _dialect, $id: _id, ...rest } = schema;
    out[id] = rest;
  }
  // A refinement is not JSON Schema; the region catalog is, so region ids list it.
  out.RegionId = { type: "string", enum: [...REGION_IDS], description: "a region id of the catalog (packages/regions)" };
  return out;
}

/** A property of a generated object schema as a parameter (`in` query or header). */
function propertyParams(component: Json | undefined, where: "query" | "header", rename: (property: string) => string = (p) => p): Json[] {
  const properties = isJson(component?.properties) ? component.properties : {};
  const required = Array.isArray(component?.required) ? component.required : [];
  return Object.entries(properties).map(([property, schema]) => ({ name: rename(property), in: where, required: required.includes(property), schema }));
}

const errorResponse = (codes: readonly string[]) => ({
  description: `error codes: ${codes.map((c) => `\`${c}\``).join(", ")}`,
  "x-error-codes": codes,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});

function operationObject(op: Operation, method: string, names: Map<ZodType, string>, schemas: Record<string, Json>): Json {
  const ref = (schema: ZodType) => ({ $ref: `#/components/schemas/${names.get(schema) ?? "missing"}` });
  const auth = op.auth ?? "public";
  const queryName = op.query === undefined ? undefined : names.get(op.query);
  const parameters = [
    ...Object.entries(op.params ?? {}).map(([name, schema]) => ({ name, in: "path", required: true, schema: names.has(schema) ? ref(schema) : inline(schema) })),
    ...(queryName === undefined ? [] : propertyParams(schemas[queryName], "query")),
    ...(op.headers ?? []).flatMap((h) => HEADER_SETS[h].params),
    ...(ROLES.some((r) => r === auth) ? [{ $ref: "#/components/parameters/Actor" }] : []),
    ...(ROLES.some((r) => r === auth) && op.method !== "GET" ? [{ $ref: "#/components/parameters/Csrf" }] : []),
  ];
  const media = op.ok.media ?? ["application/json"];
  const success: Json = {
    description: op.ok.description,
    ...(media.length > 0 ? { content: Object.fromEntries(media.map((m) => [m, op.ok.schema && m === "application/json" ? { schema: ref(op.ok.schema) } : {}])) } : {}),
  };
  const responses: Json = { [String(op.ok.status)]: success };
  for (const [status, codes] of errorsOf(op)) responses[String(status)] = errorResponse(codes);
  responses.default = errorResponse(["internal_error"]);
  const secured = security(auth);
  return {
    operationId: operationId(method, op.path),
    tags: [op.tag],
    summary: ROLES.some((r) => r === auth) ? `${op.summary} (${auth})` : op.summary,
    ...(op.description ? { description: op.description } : {}),
    ...(secured ? { security: secured } : {}),
    ...(ROLES.some((r) => r === auth) ? { "x-meridian-role": auth } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(op.body ? { requestBody: { required: true, content: { "application/json": { schema: ref(op.body) } } } } : {}),
    responses,
  };
}

const header = (name: string, description: string, schema: Json, required = false) => ({ name, in: "header", required, description, schema });

function parameterComponents(schemas: Record<string, Json>): Record<string, Json> {
  const requirementHeaders: Record<string, string> = { kind: "x-meridian-kind", gpuClass: "x-meridian-gpu", minVramGb: "x-meridian-min-vram-gb" };
  const [kind, gpu, vram] = propertyParams(schemas.Requirements, "header", (p) => requirementHeaders[p] ?? p);
  const [lat, lon, country, subdivision] = propertyParams(schemas.ClientLocation, "header", (p) => `x-client-${p}`);
  const devOnly = "Local runs only (DEV_TRUST_CLIENT_GEO=true): plays a client at this place instead of request.cf.";
  return {
    IfMatch: header("If-Match", 'The ETag of the version you edited, e.g. "v3" (compare-and-swap).', { type: "string", pattern: '^(W/)?"v[0-9]+"$' }, true),
    Reason: header("x-meridian-reason", "Why this change is made; it goes to the audit log.", { type: "string", minLength: 1, maxLength: 500 }, true),
    Force: header("x-meridian-force", "Admins only: publish despite invariant violations, for this audited reason.", { type: "string", maxLength: 500 }),
    Actor: header("x-meridian-actor", "Who acts, recorded in the audit log next to the role.", { type: "string", maxLength: 100 }),
    Csrf: header(CSRF_HEADER, "Writes with the console's session cookie: the session's CSRF token.", { type: "string" }),
    Kind: { ...kind, description: "Node kind; a GPU class or VRAM implies gpu." },
    Gpu: { ...gpu, description: "Exact GPU class (any case)." },
    MinVram: { ...vram, description: "Minimum VRAM per GPU, in GB." },
    Residency: header("x-meridian-residency", "Keep the request inside a jurisdiction the live policy enforces, e.g. eu.", { type: "string", pattern: "^[a-z][a-z0-9-]{0,31}$" }),
    Carrier: header("x-meridian-carrier", "A carrier partner's subscriber: offload to a hotspot or stay on the partner's backbone.", { $ref: "#/components/schemas/PartnerId" }),
    Subscriber: header("x-meridian-subscriber", "The subscriber's place on the offload dial (default: the client IP).", { type: "string", maxLength: 128 }),
    ClientLat: { ...lat, description: devOnly },
    ClientLon: { ...lon, description: devOnly },
    ClientCountry: { ...country, description: devOnly },
    ClientSubdivision: { ...subdivision, description: devOnly },
  };
}

/** The whole document. Pure: same table, same document. */
export function buildOpenApiDocument(): Json {
  const names = schemaNames();
  const schemas = componentSchemas(names);
  const paths: Record<string, Json> = {};
  for (const op of OPERATIONS) {
    const item = (paths[op.path] ??= {});
    const methods = op.method === "ALL" ? ALL_METHODS : [op.method.toLowerCase()];
    for (const method of methods) {
      if (method in item) throw new Error(`OpenAPI: ${method.toUpperCase()} ${op.path} is declared twice`);
      item[method] = operationObject(op, method, names, schemas);
    }
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Meridian gateway",
      version: "1",
      description: "One global endpoint that routes each client request to the nearest healthy, policy-allowed node. Generated from the zod schemas the routes validate with; prose in docs/api.md.",
    },
    tags: [...new Set(OPERATIONS.map((op) => op.tag))].map((name) => ({ name })),
    paths,
    components: {
      schemas,
      parameters: parameterComponents(schemas),
      securitySchemes: {
        roleToken: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN, EDITOR_TOKEN or VIEWER_TOKEN. Roles rank viewer < editor < admin; each operation lists the least it needs." },
        consoleSession: { type: "apiKey", in: "cookie", name: SESSION_COOKIE, description: `The console's signed session cookie (POST /console/api/session); writes also need ${CSRF_HEADER}.` },
        nodeCredential: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "A node credential from enrollment." },
        joinToken: { type: "http", scheme: "bearer", description: "A join token (mjt_...) from POST /admin/join-tokens." },
      },
    },
  };
}
