import { TenantCreateSchema, TenantIdSchema, TenantKeyCreateSchema, TenantPatchSchema, TenantUsageQuerySchema } from "@meridian/protocol";
import { zValidator } from "@hono/zod-validator";
import { Hono, type Context } from "hono";
import { ADMIN_BODY_LIMIT, changeReason, limit, validJson, type AdminApp } from "./admin-common";
import { requireRole } from "./auth";
import { HttpError } from "./errors";
import { tenantLedger, tenantLimiter, tenantStore } from "./tenants/durable";
import type { TenantUsageRow } from "./tenants/ledger";
import type { StoreResult } from "./tenants/store";

const HOUR_MS = 3600_000;

/** Tenants, their keys and their usage: the admin role writes (with x-meridian-reason), viewers read. */
export const tenantsAdmin = new Hono<AdminApp>();

function tenantParam(c: Context<AdminApp>): string {
  const parsed = TenantIdSchema.safeParse(c.req.param("id"));
  if (!parsed.success) throw new HttpError(400, "invalid_tenant_id", `tenant ids: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}

function unwrap<T>(result: StoreResult<T>): T {
  if (result.ok) return result.value;
  throw new HttpError(result.status, result.code, result.message);
}

tenantsAdmin.post("/tenants", requireRole("admin"), limit(ADMIN_BODY_LIMIT), validJson(TenantCreateSchema), async (c) => {
  const reason = changeReason(c);
  const tenant = unwrap(await tenantStore(c.env).create(c.req.valid("json"), c.get("actor"), reason));
  c.header("location", `/admin/tenants/${tenant.id}`);
  return c.json(tenant, 201);
});

tenantsAdmin.get("/tenants", requireRole("viewer"), async (c) => c.json({ tenants: await tenantStore(c.env).list() }));

tenantsAdmin.get("/tenants/audit", requireRole("viewer"), async (c) => c.json({ entries: await tenantStore(c.env).auditLog() }));

tenantsAdmin.get("/tenants/:id", requireRole("viewer"), async (c) => {
  const id = tenantParam(c);
  const tenant = await tenantStore(c.env).get(id);
  if (tenant === null) throw new HttpError(404, "unknown_tenant", `no tenant ${id}`);
  return c.json(tenant);
});

tenantsAdmin.patch("/tenants/:id", requireRole("admin"), limit(ADMIN_BODY_LIMIT), validJson(TenantPatchSchema), async (c) => {
  const id = tenantParam(c);
  const reason = changeReason(c);
  return c.json(unwrap(await tenantStore(c.env).update(id, c.req.valid("json"), c.get("actor"), reason)));
});

tenantsAdmin.delete("/tenants/:id", requireRole("admin"), async (c) => {
  const id = tenantParam(c);
  const reason = changeReason(c);
  const { revokedKeys } = unwrap(await tenantStore(c.env).remove(id, c.get("actor"), reason));
  return c.json({ deleted: id, revokedKeys });
});

tenantsAdmin.get("/tenants/:id/audit", requireRole("viewer"), async (c) => c.json({ entries: await tenantStore(c.env).auditLog(tenantParam(c)) }));

// ---- keys: shown once, stored as hashes -------------------------------------------------

tenantsAdmin.post("/tenants/:id/keys", requireRole("admin"), limit(ADMIN_BODY_LIMIT), async (c) => {
  const id = tenantParam(c);
  const reason = changeReason(c);
  const text = await c.req.text();
  const parsed = TenantKeyCreateSchema.safeParse(text.trim() === "" ? {} : safeJson(text));
  if (!parsed.success) throw new HttpError(400, "invalid_body", `${parsed.error.issues[0]?.path.join(".") || "body"}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  const created = unwrap(await tenantStore(c.env).createKey(id, c.get("actor"), reason, parsed.data.name));
  c.header("cache-control", "no-store");
  return c.json({ id: created.id, key: created.key, prefix: created.prefix, tenant: id }, 201);
});

tenantsAdmin.get("/tenants/:id/keys", requireRole("viewer"), async (c) => c.json({ keys: unwrap(await tenantStore(c.env).listKeys(tenantParam(c))) }));

tenantsAdmin.delete("/tenants/:id/keys/:keyId", requireRole("admin"), async (c) => {
  const id = tenantParam(c);
  const reason = changeReason(c);
  return c.json(unwrap(await tenantStore(c.env).revokeKey(id, c.req.param("keyId"), c.get("actor"), reason)));
});

// ---- usage: the tenant's ledger ----------------------------------------------------------

const CSV_COLUMNS = ["hour", "key", "requests", "bytes", "prompt_tokens", "completion_tokens", "total_tokens", "aborted_requests"] as const;

function toCsv(rows: TenantUsageRow[]): string {
  const lines = rows.map((r) => [r.hour, r.key, r.requests, r.bytes, r.promptTokens, r.completionTokens, r.totalTokens, r.abortedRequests].join(","));
  return `${[CSV_COLUMNS.join(","), ...lines].join("\n")}\n`;
}

tenantsAdmin.get(
  "/tenants/:id/usage",
  requireRole("viewer"),
  zValidator("query", TenantUsageQuerySchema, (result) => {
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new HttpError(400, "invalid_query", issue ? `${issue.path.join(".") || "query"}: ${issue.message}` : "invalid query");
    }
  }),
  async (c) => {
    const id = tenantParam(c);
    const query = c.req.valid("query");
    const fromMs = Math.floor(Date.parse(query.from) / HOUR_MS) * HOUR_MS;
    const toMs = Math.ceil(Date.parse(query.to) / HOUR_MS) * HOUR_MS;
    const [tenant, usage] = await Promise.all([tenantStore(c.env).get(id), tenantLedger(c.env, id).usage(fromMs, toMs)]);
    // A deleted tenant's ledger still answers: billing may come after the contract ends.
    if (tenant === null && usage.rows.length === 0) throw new HttpError(404, "unknown_tenant", `no tenant ${id} and no usage in this range`);
    if (query.format === "csv") {
      return c.body(toCsv(usage.rows), 200, { "content-type": "text/csv; charset=utf-8", "content-disposition": `attachment; filename="${id}-usage.csv"` });
    }
    const inFlight = tenant === null ? 0 : await tenantLimiter(c.env, id).inFlight();
    return c.json({ tenant: id, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), totals: usage.totals, rows: usage.rows, inFlight });
  },
);

/**
 * Chaos hook for local runs only (DEV_CHAOS_HOOKS=true): restarts a tenant's usage ledger the
 * way a crash would (memory gone, storage kept), to prove nothing is lost or counted twice.
 */
tenantsAdmin.post("/tenants/:id/ledger/crash", requireRole("admin"), async (c) => {
  if (c.env.DEV_CHAOS_HOOKS !== "true") throw new HttpError(404, "not_found", "chaos hooks are off (DEV_CHAOS_HOOKS)");
  const id = tenantParam(c);
  await tenantLedger(c.env, id)
    .crash()
    .catch(() => {});
  return c.json({ crashed: id });
});

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, "invalid_json", "the body is not valid JSON");
  }
}
