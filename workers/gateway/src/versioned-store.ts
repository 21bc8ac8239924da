import type { Finding } from "@meridian/policy";

/** What a versioned document store needs to know about its document type. */
export interface DocumentType<D> {
  /** Checks a candidate: hard errors refuse it; violations refuse it unless forced. */
  validate(input: unknown): { ok: true; document: D; violations: Finding[] } | { ok: false; errors: Finding[] };
  /** One line for the audit log. */
  diff(before: D | null, after: D): string;
}

export interface DocumentVersion<D> {
  version: number;
  document: D;
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
type AuditRow = { id: number; at: number; actor: string; action: AuditEntry["action"]; version: number; reason: string; summary: string; forced: number; force_reason: string | null; violations: string };

/**
 * Immutable document versions and their audit log in a Durable Object's SQLite, with
 * compare-and-swap publishing. Used by the policy and carrier-partner stores. Every method
 * is synchronous SQL, so a publish (check, compare, insert) is atomic in the object.
 */
export class VersionedDocuments<D> {
  constructor(
    private readonly sql: SqlStorage,
    private readonly type: DocumentType<D>,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS versions (
      version INTEGER PRIMARY KEY, document TEXT NOT NULL, created_at INTEGER NOT NULL,
      actor TEXT NOT NULL, reason TEXT NOT NULL, forced INTEGER NOT NULL DEFAULT 0)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS audit (
      id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
      version INTEGER NOT NULL, reason TEXT NOT NULL, summary TEXT NOT NULL, forced INTEGER NOT NULL,
      force_reason TEXT, violations TEXT NOT NULL)`);
  }

  /** Writes version 1 from `seed` when the store is empty; a seed that fails validation is a bug. */
  seed(seed: unknown, reason: string): void {
    if (this.latestVersion() !== 0) return;
    const checked = this.type.validate(seed);
    if (!checked.ok) throw new Error(`the shipped seed document is invalid: ${JSON.stringify(checked.errors)}`);
    this.insert(checked.document, "system", reason, "seed", [], null, "initial version");
  }

  current(): DocumentVersion<D> {
    const version = this.get(this.latestVersion());
    if (version === null) throw new Error("the store holds no version");
    return version;
  }

  get(version: number): DocumentVersion<D> | null {
    const row = this.sql.exec<VersionRow>("SELECT * FROM versions WHERE version = ?", version).toArray()[0];
    return row === undefined ? null : this.toVersion(row);
  }

  list(): Omit<DocumentVersion<D>, "document">[] {
    return this.sql
      .exec<VersionRow>("SELECT * FROM versions ORDER BY version DESC")
      .toArray()
      .map((row) => {
        const { document: _document, ...rest } = this.toVersion(row);
        return rest;
      });
  }

  audit(limit = 200): AuditEntry[] {
    return this.sql
      .exec<AuditRow>("SELECT * FROM audit ORDER BY id DESC LIMIT ?", limit)
      .toArray()
      .map((r) => ({ id: r.id, at: new Date(r.at).toISOString(), actor: r.actor, action: r.action, version: r.version, reason: r.reason, summary: r.summary, forced: r.forced === 1, forceReason: r.force_reason, violations: JSON.parse(r.violations) as Finding[] }));
  }

  /** Validates, checks invariants and compare-and-swaps in one synchronous step. */
  publish(request: PublishRequest): PublishResult {
    const current = this.latestVersion();
    if (request.expectedVersion !== current) return { ok: false, kind: "conflict", currentVersion: current };
    const checked = this.type.validate(request.document);
    if (!checked.ok) return { ok: false, kind: "invalid", errors: checked.errors };
    if (checked.violations.length > 0 && request.forceReason === undefined) return { ok: false, kind: "violations", violations: checked.violations };
    const before = this.get(current)?.document ?? null;
    const summary = this.type.diff(before, checked.document);
    const version = this.insert(checked.document, request.actor, request.reason, request.action ?? "publish", checked.violations, request.forceReason ?? null, summary);
    return { ok: true, version, summary, violations: checked.violations };
  }

  latestVersion(): number {
    const row = this.sql.exec<{ v: number | null }>("SELECT MAX(version) AS v FROM versions").toArray()[0];
    return row?.v ?? 0;
  }

  private insert(document: D, actor: string, reason: string, action: AuditEntry["action"], violations: Finding[], forceReason: string | null, summary: string): number {
    const version = this.latestVersion() + 1;
    const now = Date.now();
    const forced = forceReason === null ? 0 : 1;
    this.sql.exec("INSERT INTO versions (version, document, created_at, actor, reason, forced) VALUES (?, ?, ?, ?, ?, ?)", version, JSON.stringify(document), now, actor, reason, forced);
    this.sql.exec(
      "INSERT INTO audit (at, actor, action, version, reason, summary, forced, force_reason, violations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      now, actor, action, version, reason, summary, forced, forceReason, JSON.stringify(violations),
    );
    return version;
  }

  private toVersion(row: VersionRow): DocumentVersion<D> {
    return { version: row.version, document: JSON.parse(row.document) as D, createdAt: new Date(row.created_at).toISOString(), actor: row.actor, reason: row.reason, forced: row.forced === 1 };
  }
}
