import { DurableObject } from "cloudflare:workers";
import { TenantSchema, type Tenant, type TenantCreate, type TenantPatch } from "@meridian/protocol";
import { generateTenantKey, hashTenantKey, keyPrefix, sameHash } from "./keys";
import type { ResolvedKey, TenantSync } from "./types";

export type { ResolvedKey, TenantSync } from "./types";

export interface TenantKeyInfo {
  id: string;
  prefix: string;
  name: string | null;
  createdAt: string;
  createdBy: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface TenantAuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  tenant: string;
  reason: string;
  detail: string;
}

export type StoreResult<T> = { ok: true; value: T } | { ok: false; status: 404 | 409; code: string; message: string };

type TenantRow = { id: string; doc: string };
type KeyRow = { id: string; tenant: string; hash: string; prefix: string; name: string | null; created_at: number; created_by: string; last_used_at: number | null; revoked_at: number | null };
type AuditRow = { seq: number; at: number; actor: string; action: string; tenant: string; reason: string; detail: string };

/** Change rows are kept this long; an isolate that has not synced for longer starts afresh. */
const CHANGE_RETENTION_MS = 3600_000;

const notFound = (id: string): StoreResult<never> => ({ ok: false, status: 404, code: "unknown_tenant", message: `no tenant ${id}` });

/**
 * The source of truth for tenants and their keys (one object, named "global"). Every change is
 * validated, audited (who, when, why, what) and appended to a change feed that gateway isolates
 * poll to drop revoked keys and edited tenants from their caches within a second.
 */
export class TenantStore extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, doc TEXT NOT NULL)");
    sql.exec(`CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, name TEXT,
      created_at INTEGER NOT NULL, created_by TEXT NOT NULL, last_used_at INTEGER, revoked_at INTEGER)`);
    sql.exec("CREATE INDEX IF NOT EXISTS keys_tenant ON keys (tenant)");
    sql.exec("CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, tenant TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, tenant TEXT, hash TEXT)");
  }

  create(input: TenantCreate, actor: string, reason: string): StoreResult<Tenant> {
    const id = input.id ?? `t-${crypto.randomUUID().slice(0, 8)}`;
    if (this.tenantRow(id) !== null) return { ok: false, status: 409, code: "tenant_exists", message: `tenant ${id} exists already` };
    const now = new Date().toISOString();
    const tenant = TenantSchema.parse({ ...input, id, createdAt: now, updatedAt: now });
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.sql.exec("INSERT INTO tenants (id, doc) VALUES (?, ?)", id, JSON.stringify(tenant));
      this.audit(actor, "create", id, reason, describeTenant(tenant));
    });
    return { ok: true, value: tenant };
  }

  list(): Tenant[] {
    return this.ctx.storage.sql.exec<TenantRow>("SELECT * FROM tenants ORDER BY id").toArray().map(parseTenant);
  }

  get(id: string): Tenant | null {
    const row = this.tenantRow(id);
    return row === null ? null : parseTenant(row);
  }

  update(id: string, patch: TenantPatch, actor: string, reason: string): StoreResult<Tenant> {
    const before = this.get(id);
    if (before === null) return notFound(id);
    const { parentHqCountry, residency, limits, ...rest } = patch;
    const merged: Record<string, unknown> = { ...before, ...rest, limits: { ...before.limits, ...limits }, updatedAt: new Date().toISOString() };
    if (parentHqCountry === null) delete merged.parentHqCountry;
    else if (parentHqCountry !== undefined) merged.parentHqCountry = parentHqCountry;
    if (residency === null) delete merged.residency;
    else if (residency !== undefined) merged.residency = residency;
    const after = TenantSchema.parse(merged);
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.sql.exec("UPDATE tenants SET doc = ? WHERE id = ?", JSON.stringify(after), id);
      this.audit(actor, "update", id, reason, diffTenants(before, after));
      this.changed(id, null);
    });
    return { ok: true, value: after };
  }

  /** Deletes the tenant and revokes every key it has; its usage ledger stays for billing. */
  remove(id: string, actor: string, reason: string): StoreResult<{ revokedKeys: number }> {
    const tenant = this.get(id);
    if (tenant === null) return notFound(id);
    let revokedKeys = 0;
    this.ctx.storage.transactionSync(() => {
      const now = Date.now();
      const live = this.ctx.storage.sql.exec<KeyRow>("SELECT * FROM keys WHERE tenant = ? AND revoked_at IS NULL", id).toArray();
      for (const key of live) {
        this.ctx.storage.sql.exec("UPDATE keys SET revoked_at = ? WHERE id = ?", now, key.id);
        this.changed(id, key.hash);
      }
      revokedKeys = live.length;
      this.ctx.storage.sql.exec("DELETE FROM tenants WHERE id = ?", id);
      this.audit(actor, "delete", id, reason, `${describeTenant(tenant)}; ${revokedKeys} key(s) revoked`);
      this.changed(id, null);
    });
    return { ok: true, value: { revokedKeys } };
  }

  /**
   * A new key for the tenant; the secret is returned once. `secret` is for the test harness and
   * local seeding only (the admin API never passes one): the store still keeps only its hash.
   */
  async createKey(tenantId: string, actor: string, reason: string, name?: string, secret?: string): Promise<StoreResult<{ id: string; key: string; prefix: string }>> {
    if (this.tenantRow(tenantId) === null) return notFound(tenantId);
    const key = secret ?? generateTenantKey();
    const hash = await hashTenantKey(key);
    const id = `key_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`;
    const prefix = keyPrefix(key);
    // The tenant may have gone while the hash was computed (await): check again, in one transaction.
    if (this.tenantRow(tenantId) === null) return notFound(tenantId);
    if (this.ctx.storage.sql.exec("SELECT 1 FROM keys WHERE hash = ?", hash).toArray().length > 0) {
      return { ok: false, status: 409, code: "key_exists", message: "that key is in use already" };
    }
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.sql.exec("INSERT INTO keys (id, tenant, hash, prefix, name, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)", id, tenantId, hash, prefix, name ?? null, Date.now(), actor);
      this.audit(actor, "create-key", tenantId, reason, `key ${id} (${prefix})${name ? ` "${name}"` : ""}`);
      // Isolates that were shown this key before it existed forget that they refused it.
      this.changed(tenantId, hash);
    });
    return { ok: true, value: { id, key, prefix } };
  }

  listKeys(tenantId: string): StoreResult<TenantKeyInfo[]> {
    if (this.tenantRow(tenantId) === null) return notFound(tenantId);
    const rows = this.ctx.storage.sql.exec<KeyRow>("SELECT * FROM keys WHERE tenant = ? ORDER BY created_at, id", tenantId).toArray();
    return { ok: true, value: rows.map(toKeyInfo) };
  }

  revokeKey(tenantId: string, keyId: string, actor: string, reason: string): StoreResult<TenantKeyInfo> {
    const row = this.ctx.storage.sql.exec<KeyRow>("SELECT * FROM keys WHERE id = ? AND tenant = ?", keyId, tenantId).toArray()[0];
    if (row === undefined) return { ok: false, status: 404, code: "unknown_key", message: `tenant ${tenantId} has no key ${keyId}` };
    if (row.revoked_at !== null) return { ok: true, value: toKeyInfo(row) };
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.sql.exec("UPDATE keys SET revoked_at = ? WHERE id = ?", now, keyId);
      this.audit(actor, "revoke-key", tenantId, reason, `key ${keyId} (${row.prefix})`);
      this.changed(tenantId, row.hash);
    });
    return { ok: true, value: toKeyInfo({ ...row, revoked_at: now }) };
  }

  /** The live key with this hash and its tenant, or null (unknown, revoked, tenant deleted). */
  resolve(hash: string): ResolvedKey | null {
    const row = this.ctx.storage.sql.exec<KeyRow>("SELECT * FROM keys WHERE hash = ? AND revoked_at IS NULL", hash).toArray()[0];
    // The index found the row; the hashes are still compared in constant time.
    if (row === undefined || !sameHash(row.hash, hash)) return null;
    const tenant = this.get(row.tenant);
    return tenant === null ? null : { keyId: row.id, hash: row.hash, tenant };
  }

  /**
   * An isolate's poll: what changed since `since`, and which keys it saw used (last-used times
   * are written here, in bulk, rather than on every request).
   */
  sync(since: number, used: Record<string, number> = {}): TenantSync {
    const sql = this.ctx.storage.sql;
    const entries = Object.entries(used);
    if (entries.length > 0) {
      this.ctx.storage.transactionSync(() => {
        for (const [keyId, at] of entries) sql.exec("UPDATE keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?", at, keyId);
      });
    }
    const latest = sql.exec<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM changes").one().seq ?? 0;
    const oldest = sql.exec<{ seq: number | null }>("SELECT MIN(seq) AS seq FROM changes").one().seq ?? latest + 1;
    // A first sync (since < 0) or one from before the oldest kept change: start afresh.
    if (since < 0 || since < oldest - 1) return { seq: latest, reset: true, tenants: [], hashes: [] };
    const rows = sql.exec<{ tenant: string | null; hash: string | null }>("SELECT tenant, hash FROM changes WHERE seq > ?", since).toArray();
    return {
      seq: latest,
      reset: false,
      tenants: [...new Set(rows.flatMap((r) => (r.tenant === null ? [] : [r.tenant])))],
      hashes: [...new Set(rows.flatMap((r) => (r.hash === null ? [] : [r.hash])))],
    };
  }

  auditLog(tenantId?: string): TenantAuditEntry[] {
    const rows =
      tenantId === undefined
        ? this.ctx.storage.sql.exec<AuditRow>("SELECT * FROM audit ORDER BY seq DESC LIMIT 500").toArray()
        : this.ctx.storage.sql.exec<AuditRow>("SELECT * FROM audit WHERE tenant = ? ORDER BY seq DESC LIMIT 500", tenantId).toArray();
    return rows.map((r) => ({ seq: r.seq, at: new Date(r.at).toISOString(), actor: r.actor, action: r.action, tenant: r.tenant, reason: r.reason, detail: r.detail }));
  }

  private tenantRow(id: string): TenantRow | null {
    return this.ctx.storage.sql.exec<TenantRow>("SELECT * FROM tenants WHERE id = ?", id).toArray()[0] ?? null;
  }

  private audit(actor: string, action: string, tenant: string, reason: string, detail: string): void {
    this.ctx.storage.sql.exec("INSERT INTO audit (at, actor, action, tenant, reason, detail) VALUES (?, ?, ?, ?, ?, ?)", Date.now(), actor, action, tenant, reason, detail);
  }

  private changed(tenant: string, hash: string | null): void {
    const now = Date.now();
    this.ctx.storage.sql.exec("INSERT INTO changes (at, tenant, hash) VALUES (?, ?, ?)", now, tenant, hash);
    this.ctx.storage.sql.exec("DELETE FROM changes WHERE at < ? AND seq < (SELECT MAX(seq) FROM changes)", now - CHANGE_RETENTION_MS);
  }
}

/** Stored documents were validated on the way in; parsing again keeps the type honest. */
function parseTenant(row: TenantRow): Tenant {
  return TenantSchema.parse(JSON.parse(row.doc));
}

function toKeyInfo(row: KeyRow): TenantKeyInfo {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return { id: row.id, prefix: row.prefix, name: row.name, createdAt: new Date(row.created_at).toISOString(), createdBy: row.created_by, lastUsedAt: iso(row.last_used_at), revokedAt: iso(row.revoked_at) };
}

function describeTenant(t: Tenant): string {
  return `${t.id} "${t.name}" hq ${t.hqCountry}${t.parentHqCountry ? ` (parent ${t.parentHqCountry})` : ""}${t.residency ? `, residency ${t.residency}` : ""}, limits ${JSON.stringify(t.limits)}`;
}

function diffTenants(before: Tenant, after: Tenant): string {
  const fields = ["name", "hqCountry", "parentHqCountry", "residency", "limits"] as const;
  const parts = fields.flatMap((f) => {
    const a = JSON.stringify(before[f] ?? null);
    const b = JSON.stringify(after[f] ?? null);
    return a === b ? [] : [`${f} ${a} -> ${b}`];
  });
  return parts.length > 0 ? parts.join("; ") : "no change";
}
