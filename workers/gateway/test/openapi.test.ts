/**
 * The OpenAPI document against the app it describes: every route of the gateway is in it and
 * every operation in it is a route; its references resolve; and real answers match the
 * schemas it states. (Validation against the OpenAPI 3.1 schema runs in Node, in
 * test/docs.e2e.test.ts, on the document the local gateway serves.)
 */
import { SELF } from "cloudflare:test";
import { Hono } from "hono";
import { inspectRoutes } from "hono/dev";
import { describe, expect, it } from "vitest";
import app from "../src/index";
import { ALL_METHODS, ErrorSchema, buildOpenApiDocument, openApiPath } from "../src/openapi/document";
import { OPERATIONS } from "../src/openapi/operations";
import { ADMIN, BASE } from "./helpers";

type Json = Record<string, unknown>;

/** "METHOD /openapi/{path}" of every route with a handler (middleware-only entries are left out). */
function appRoutes(hono: Hono<{ Bindings: Env }>): Set<string> {
  return new Set(inspectRoutes(hono).filter((r) => !r.isMiddleware).map((r) => `${r.method} ${openApiPath(r.path)}`));
}

const documented = new Set(OPERATIONS.map((op) => `${op.method} ${op.path}`));
const missingFrom = (routes: Set<string>, table: Set<string>) => [...routes].filter((r) => !table.has(r)).sort();

async function servedDocument(): Promise<Json> {
  const res = await SELF.fetch(`${BASE}/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("application/json");
  return (await res.json()) as Json;
}

/** Every `$ref` string anywhere in a JSON value. */
function refs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refs(v, out);
  else if (typeof value === "object" && value !== null) {
    for (const [key, v] of Object.entries(value)) {
      if (key === "$ref" && typeof v === "string") out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

function resolve(doc: Json, ref: string): unknown {
  if (!ref.startsWith("#/")) return undefined;
  let at: unknown = doc;
  for (const part of ref.slice(2).split("/")) at = typeof at === "object" && at !== null ? (at as Json)[part] : undefined;
  return at;
}

const operationsOf = (doc: Json) =>
  Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op: op as Json })));

/** A concrete URL for an OpenAPI path: parameters filled with values that parse. */
const concrete = (path: string) => path.replace("{version}", "1").replace("{id}", "openapi-test").replace("{path}", "models");

describe("OpenAPI document", () => {
  it("documents every route of the app, and only routes of the app", () => {
    const routes = appRoutes(app);
    console.log(`[openapi] ${routes.size} routes in the app, ${documented.size} rows in the table`);
    expect(missingFrom(routes, documented), "routes without a row in src/openapi/operations.ts").toEqual([]);
    expect(missingFrom(documented, routes), "rows in src/openapi/operations.ts that are no route").toEqual([]);
  });

  it("catches a route added without documentation", () => {
    const grown = new Hono<{ Bindings: Env }>().route("/", app);
    grown.get("/admin/undocumented/:id", (c) => c.json({}));
    grown.use("/admin/undocumented/*", async (_c, next) => next());
    expect(missingFrom(appRoutes(grown), documented)).toEqual(["GET /admin/undocumented/{id}"]);
  });

  it("is served at /openapi.json as built, in OpenAPI 3.1 form", async () => {
    const doc = await servedDocument();
    expect(doc).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
    expect(doc.openapi).toBe("3.1.0");
    const expanded = OPERATIONS.flatMap((op) => (op.method === "ALL" ? ALL_METHODS.map((m) => `${m} ${op.path}`) : [`${op.method.toLowerCase()} ${op.path}`]));
    expect(operationsOf(doc).map(({ method, path }) => `${method} ${path}`).sort()).toEqual(expanded.sort());
  });

  it("resolves every reference, declares every path parameter, and names known security schemes", async () => {
    const doc = await servedDocument();
    const dangling = [...new Set(refs(doc))].filter((ref) => resolve(doc, ref) === undefined);
    expect(dangling).toEqual([]);
    const schemes = Object.keys((doc.components as Json).securitySchemes as Json);
    const ids = new Set<string>();
    for (const { path, method, op } of operationsOf(doc)) {
      const declared = ((op.parameters ?? []) as Json[]).filter((p) => p.in === "path").map((p) => p.name);
      const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      expect(declared.sort(), `${method} ${path}`).toEqual(inPath.sort());
      for (const requirement of (op.security ?? []) as Json[]) for (const name of Object.keys(requirement)) expect(schemes).toContain(name);
      expect(ids.has(String(op.operationId)), `${method} ${path}: operationId`).toBe(false);
      ids.add(String(op.operationId));
      const responses = op.responses as Json;
      expect(Object.keys(responses).length).toBeGreaterThan(1);
    }
  });

  it("states the error shape and the statuses a role-protected route answers without a token", async () => {
    const doc = await servedDocument();
    let checked = 0;
    for (const { path, method, op } of operationsOf(doc)) {
      if (op["x-meridian-role"] === undefined || !["get", "post", "put", "delete"].includes(method)) continue;
      const res = await SELF.fetch(`${BASE}${concrete(path)}`, { method: method.toUpperCase() });
      expect(res.status, `${method} ${path}`).toBe(401);
      const body = ErrorSchema.parse(await res.json());
      const documented401 = (op.responses as Record<string, Json>)["401"]?.["x-error-codes"];
      expect(documented401, `${method} ${path}`).toContain(body.error.code);
      checked++;
    }
    console.log(`[openapi] ${checked} role-protected operations answered 401 in the documented shape`);
    expect(checked).toBeGreaterThan(20);
  });

  it("states answers that real answers match", async () => {
    let checked = 0;
    for (const op of OPERATIONS) {
      const schema = op.ok.schema;
      if (schema === undefined || op.method !== "GET") continue;
      const res = await SELF.fetch(`${BASE}${concrete(op.path)}`, { headers: ADMIN });
      if (op.path === "/admin/carriers/{id}" || op.path === "/admin/tenants/{id}") {
        expect(res.status).toBe(404); // no partner in the seed document, no tenant by the placeholder id
        continue;
      }
      expect(res.status, `${op.method} ${op.path}`).toBe(op.ok.status);
      const parsed = schema.safeParse(await res.json());
      expect(parsed.success, `${op.method} ${op.path}: ${parsed.error?.message}`).toBe(true);
      checked++;
    }
    const enrollment = OPERATIONS.find((op) => op.method === "POST" && op.path === "/admin/nodes");
    const res = await SELF.fetch(`${BASE}/admin/nodes`, {
      method: "POST",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ id: "openapi-nrt-1", kind: "gpu", region: "nrt", gpu: { class: "h100", vramGb: 80, count: 8 }, capacity: 8 }),
    });
    expect(res.status).toBe(enrollment?.ok.status);
    expect(enrollment?.ok.schema?.safeParse(await res.json()).success).toBe(true);
    console.log(`[openapi] ${checked + 1} answers match their documented schemas`);
    expect(checked).toBeGreaterThanOrEqual(4);
  });
});
