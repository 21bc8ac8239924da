import { DurableObject } from "cloudflare:workers";
import { diffPolicies, validatePolicy, type Finding } from "@meridian/policy";
import type { PolicyDocument } from "@meridian/protocol";
import baseline from "../../../infra/policies/baseline.json";
import type { Env } from "./env";

export interface PolicyVersion {
  version: number;
  document: PolicyDocument;
  createdAt: string;
  actor: string;
  reason: string;
  forced: boolean;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: "seed" | "publish" | "rollback";
  version: number;
  reason: string;
  summary: string;
  forced: boolean;
  forceReason: string | null;
  violations: Finding[];
}

export interface PublishRequest {
  document: unknown;
  /** Compare-and-swap: the version the editor started from (If-Match). */
  expectedVersion: number;
  actor: string;
  reason: string;
  /** Publish despite invariant violations; only admins may, and the reason is audited. */
  forceReason?: string;
  action?: "publish" | "rollback";
}

export type PublishResult =
  | { ok: true; version: number; summary: string; violations: Finding[] }
  | { ok: false; kind: "conflict"; currentVersion: number }
  | { ok: false; kind: "invalid"; errors: Finding[] }
  | { ok: false; kind: "violations"; violations: Finding[] };

type VersionRow = { version: number; document: string; created_at: number; actor: string; reason: string; forced: number };

/**
 * The policy's single source of truth: immutable versions in SQLite, compare-and-swap
 * publishing, an audit log, rollback as a new version. A fresh install starts from the
 * baseline in infra/policies/. Every publish tells the Directory, whose snapshots carry
 * the policy version to the gateway isolates.
 */
export class PolicyStore extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql;
      sql.exec(`CREATE TABLE IF NOT EXISTS versions (
        version INTEGER PRIMARY KEY, document TEXT NOT NULL, created_at INTEGER NOT NULL,
        actor TEXT NOT NULL, reason TEXT NOT NULL, forced INTEGER NOT NULL DEFAULT 0)`);
      sql.exec(`CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        version INTEGER NOT NULL, reason TEXT NOT NULL, summary TEXT NOT NULL, forced INTEGER NOT NULL,
        force_reason TEXT, violations TEXT NOT NULL)`);
      if (this.latestVersion() === 0) {
        const checked = validatePolicy(baseline);
        if (!checked.ok) throw new Error(`the shipped baseline policy is invalid: ${JSON.stringify(checked.errors)}`);
        this.insert(checked.document, "system", "baseline from infra/policies/baseline.json", "seed", [], null);
      }
    });
  }

  current(): PolicyVersion {
    const version = this.get(this.latestVersion());
    if (version === null) throw new Error("policy store holds no version");
    return version;
  }

  get(version: number): PolicyVersion | null {
    const row = this.ctx.storage.sql.exec<VersionRow>("SELECT * FROM versions WHERE version = ?", version).toArray()[0];
    return row === undefined ? null : toVersion(row);
  }

  list(): Omit<PolicyVersion, "document">[] {
    return this.ctx.storage.sql
      .exec<VersionRow>("SELECT * FROM versions ORDER BY version DESC")
      .toArray()
      .map((row) => {
        const { document: _document, ...rest } = toVersion(row);
        return rest;
      });
  }

  audit(limit = 200): AuditEntry[] {
    type Row = { id: number; at: number; actor: string; action: AuditEntry["action"]; version: number; reason: string; summary: string; forced: number; force_reason: string | null; violations: string };
    return this.ctx.storage.sql
      .exec<Row>("SELECT * FROM audit ORDER BY id DESC LIMIT ?", limit)
      .toArray()
      .map((r) => ({ id: r.id, at: new Date(r.at).toISOString(), actor: r.actor, action: r.action, version: r.version, reason: r.reason, summary: r.summary, forced: r.forced === 1, forceReason: r.force_reason, violations: JSON.parse(r.violations) as Finding[] }));
  }

  /** Validates, checks invariants and compare-and-swaps in one step (the object is single-threaded). */
  async publish(request: PublishRequest): Promise<PublishResult> {
    const current = this.latestVersion();
    if (request.expectedVersion !== current) return { ok: false, kind: "conflict", currentVersion: current };
    const checked = validatePolicy(request.document);
    if (!checked.ok) return { ok: false, kind: "invalid", errors: checked.errors };
    if (checked.violations.length > 0 && request.forceReason === undefined) return { ok: false, kind: "violations", violations: checked.violations };
    const before = this.get(current)?.document ?? null;
    const summary = diffPolicies(before, checked.document).summary;
    const version = this.insert(checked.document, request.actor, request.reason, request.action ?? "publish", checked.violations, request.forceReason ?? null, summary);
    await this.announce(version);
    return { ok: true, version, summary, violations: checked.violations };
  }

  /** Tells the Directory, so every isolate's next snapshot carries the new version. */
  private async announce(version: number): Promise<void> {
    await this.env.DIRECTORY.get(this.env.DIRECTORY.idFromName("global")).setPolicyVersion(version);
  }

  private latestVersion(): number {
    const row = this.ctx.storage.sql.exec<{ v: number | null }>("SELECT MAX(version) AS v FROM versions").toArray()[0];
    return row?.v ?? 0;
  }

  private insert(document: PolicyDocument, actor: string, reason: string, action: AuditEntry["action"], violations: Finding[], forceReason: string | null, summary = "initial version"): number {
    const version = this.latestVersion() + 1;
    const now = Date.now();
    const forced = forceReason === null ? 0 : 1;
    this.ctx.storage.sql.exec(
      "INSERT INTO versions (version, document, created_at, actor, reason, forced) VALUES (?, ?, ?, ?, ?, ?)",
      version, JSON.stringify(document), now, actor, reason, forced,
    );
    this.ctx.storage.sql.exec(
      "INSERT INTO audit (at, actor, action, version, reason, summary, forced, force_reason, violations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      now, actor, action, version, reason, summary, forced, forceReason, JSON.stringify(violations),
    );
    return version;
  }
}

function toVersion(row: VersionRow): PolicyVersion {
  return {
    version: row.version,
    document: JSON.parse(row.document) as PolicyDocument,
    createdAt: new Date(row.created_at).toISOString(),
    actor: row.actor,
    reason: row.reason,
    forced: row.forced === 1,
  };
}
