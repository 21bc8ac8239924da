import { Hono } from "hono";
import { buildOpenApiDocument } from "./document";

/**
 * GET /openapi.json: the OpenAPI 3.1 document, built once per isolate (the table is fixed
 * at deploy). The interactive reference at /docs is a static asset page that reads it.
 */
export const openApi = new Hono<{ Bindings: Env }>();

let cached: string | null = null;

openApi.get("/openapi.json", (c) => {
  cached ??= JSON.stringify(buildOpenApiDocument());
  return c.body(cached, 200, { "content-type": "application/json; charset=utf-8", "cache-control": "public, max-age=300" });
});
