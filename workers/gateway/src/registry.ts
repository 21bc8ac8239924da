import { DurableObject } from "cloudflare:workers";
import { assignCell, hubName, joinScopeProblem, parseCellCapacity, toBase64Url, type CredentialClaims, type Enrollment, type JoinTokenRequest, type JoinTokenScope } from "@meridian/protocol";
import { credentialKeys, issueCredential } from "./credentials";
import { regionHub } from "./durable";

/** A node as the registry holds it: the one credential that is good for it, or why none is. */
export interface RegisteredNode {
  id: string;
  region: string;
  /** The RegionHub (cell of the region) the node's socket goes to: `<region>` or `<region>/<k>`. */
  hub: string;
  kind: string;
  credentialId: string;
  status: "active" | "revoked";
  enrolledAt: string;
  expiresAt: string;
  /** Who enrolled it: an admin's actor, or "join:<token id>". */
  enrolledBy: string;
  revokedAt?: string;
  revokedReason?: string;
}

export type CredentialStatus = "active" | "revoked" | "superseded" | "unknown";

/** What the gateway learns at a connect: whether the credential is good, and which cell of its region holds the node. */
export interface ConnectCheck {
  status: CredentialStatus;
  cell: number;
}

export type EnrollOutcome =
  | { ok: true; credential: string; claims: CredentialClaims }
  | { ok: false; status: 401 | 403 | 409 | 503; code: string; message: string };

export interface JoinTokenInfo {
  id: string;
  scope: JoinTokenScope;
  usesLeft: number;
  uses: number;
  expiresAt: string;
  createdAt: string;
  createdBy: string;
  note?: string;
  revoked: boolean;
}

export interface RegistryAuditEntry {
  at: string;
  actor: string;
  action: string;
  node: string | null;
  detail: string;
}

type NodeRow = { id: string; region: string; cell: number; kind: string; jti: string; status: "active" | "revoked"; enrolled_at: number; expires_at: number; enrolled_by: string; revoked_at: number | null; revoked_reason: string | null };
type TokenRow = { id: string; hash: string; scope: string; uses: number; uses_left: number; expires_at: number; created_at: number; created_by: string; note: string | null; revoked: number };

const JOIN_TOKEN_PREFIX = "mjt_";

/** SHA-256 of a join token, hex: tokens are stored only as this. */
export async function joinTokenHash(token: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The source of truth for enrolled nodes (one, named "global"): node ids are unique
 * fleet-wide, each node has exactly one good credential, revocation reaches the node's hub
 * at once, and join tokens let operators enroll within a scope without the admin token.
 * Every change is audited.
 *
 * It also assigns each node its hub cell (hub-cells in packages/protocol): at enrollment,
 * kept in the node's row, so it is the same at every reconnect, and counted among the
 * region's active nodes so that no cell holds more than HUB_CELL_CAPACITY of them.
 */
export class NodeRegistry extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, region TEXT NOT NULL, kind TEXT NOT NULL, jti TEXT NOT NULL, status TEXT NOT NULL,
      enrolled_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, enrolled_by TEXT NOT NULL, revoked_at INTEGER, revoked_reason TEXT)`);
    // Rows from before hub cells are in cell 0: the hub named by the region, where their sockets went.
    if (!sql.exec<{ name: string }>("PRAGMA table_info(nodes)").toArray().some((column) => column.name === "cell")) {
      sql.exec("ALTER TABLE nodes ADD COLUMN cell INTEGER NOT NULL DEFAULT 0");
    }
    // Active nodes per cell, kept with every status change, so an enrollment reads a few rows
    // rather than counting the region's nodes (about 10 ms at 100k nodes in one region).
    sql.exec("CREATE TABLE IF NOT EXISTS cells (region TEXT NOT NULL, cell INTEGER NOT NULL, nodes INTEGER NOT NULL, PRIMARY KEY (region, cell))");
    if (sql.exec("SELECT 1 FROM cells LIMIT 1").toArray().length === 0) {
      sql.exec("INSERT INTO cells (region, cell, nodes) SELECT region, cell, COUNT(*) FROM nodes WHERE status = 'active' GROUP BY region, cell");
    }
    sql.exec(`CREATE TABLE IF NOT EXISTS join_tokens (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, scope TEXT NOT NULL, uses INTEGER NOT NULL, uses_left INTEGER NOT NULL,
      expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL, note TEXT, revoked INTEGER NOT NULL DEFAULT 0)`);
    sql.exec("CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, node TEXT, detail TEXT NOT NULL)");
  }

  /** An admin enrolls (or re-enrolls, or with `move` moves) a node; its previous credential stops working. */
  async enroll(enrollment: Enrollment, actor: string): Promise<EnrollOutcome> {
    const existing = this.row(enrollment.id);
    if (existing !== null && existing.status === "active" && existing.region !== enrollment.region && enrollment.move !== true) {
      return { ok: false, status: 409, code: "node_exists", message: `node ${enrollment.id} is enrolled in ${existing.region}; to move it to ${enrollment.region}, send "move": true (its credential for ${existing.region} is revoked)` };
    }
    return this.issue(enrollment, actor, existing);
  }

  /** An operator enrolls with a join token: within its scope, once per use, never over an existing id. */
  async join(tokenHash: string, enrollment: Enrollment): Promise<EnrollOutcome> {
    const now = Date.now();
    const token = [...this.ctx.storage.sql.exec<TokenRow>("SELECT * FROM join_tokens WHERE hash = ?", tokenHash)][0];
    if (token === undefined || token.revoked === 1) return { ok: false, status: 401, code: "invalid_join_token", message: "the join token is unknown or revoked" };
    if (token.expires_at <= now) return { ok: false, status: 401, code: "join_token_expired", message: `the join token expired at ${new Date(token.expires_at).toISOString()}` };
    if (token.uses_left <= 0) return { ok: false, status: 401, code: "join_token_used", message: `the join token has been used ${token.uses} time(s), all it allows` };
    const problem = joinScopeProblem(JSON.parse(token.scope) as JoinTokenScope, enrollment);
    if (problem !== null) return { ok: false, status: 403, code: "outside_join_scope", message: problem };
    if (this.row(enrollment.id) !== null) return { ok: false, status: 409, code: "node_exists", message: `node id ${enrollment.id} is taken; choose another id (an admin re-enrolls or moves existing nodes)` };
    // The use is taken before the credential is signed; both happen before any other call runs.
    this.ctx.storage.sql.exec("UPDATE join_tokens SET uses_left = uses_left - 1 WHERE id = ?", token.id);
    return this.issue(enrollment, `join:${token.id}`, null);
  }

  private async issue(enrollment: Enrollment, actor: string, existing: NodeRow | null): Promise<EnrollOutcome> {
    const { credential, claims } = await issueCredential(await credentialKeys(this.env), enrollment, Date.now());
    // Re-read after the await: a concurrent enrollment of the same id may have landed.
    const current = this.row(enrollment.id);
    if ((current?.jti ?? null) !== (existing?.jti ?? null)) {
      return { ok: false, status: 409, code: "node_exists", message: `node ${enrollment.id} was enrolled concurrently; retry` };
    }
    // Assigned with no await between the count and the write: two enrollments cannot both take a cell's last place.
    const cell = this.cellFor(claims.region, current);
    if (cell === null) {
      return { ok: false, status: 503, code: "region_full", message: `every hub cell of ${claims.region} is full; revoke unused nodes there or raise HUB_CELL_CAPACITY` };
    }
    this.ctx.storage.sql.exec(
      `INSERT OR REPLACE INTO nodes (id, region, cell, kind, jti, status, enrolled_at, expires_at, enrolled_by, revoked_at, revoked_reason) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?, NULL, NULL)`,
      claims.id, claims.region, cell, claims.kind, claims.jti, claims.iat * 1000, claims.exp * 1000, actor,
    );
    if (current !== null && current.status === "active") this.countInCell(current.region, current.cell, -1);
    this.countInCell(claims.region, cell, +1);
    const action = existing === null ? "enroll" : existing.region !== claims.region ? "move" : "re-enroll";
    this.audit(actor, action, claims.id, `${claims.kind} in ${claims.region} (hub ${hubName(claims.region, cell)})${existing ? ` (previous credential ${existing.jti} in ${existing.region} no longer valid)` : ""}`);
    if (existing !== null && existing.status === "active") await this.closeSockets(existing, `credential replaced (${action})`);
    return { ok: true, credential, claims };
  }

  /** Revokes the node's credential and closes its socket; false when the node is unknown. */
  async revoke(id: string, reason: string, actor: string): Promise<{ revoked: boolean; closed: boolean; region?: string; hub?: string }> {
    const row = this.row(id);
    if (row === null) return { revoked: false, closed: false };
    this.ctx.storage.sql.exec("UPDATE nodes SET status = 'revoked', revoked_at = ?, revoked_reason = ? WHERE id = ?", Date.now(), reason, id);
    if (row.status === "active") this.countInCell(row.region, row.cell, -1);
    this.audit(actor, "revoke", id, reason);
    const closed = await this.closeSockets(row, `revoked: ${reason}`);
    return { revoked: true, closed, region: row.region, hub: hubName(row.region, row.cell) };
  }

  /** What the gateway asks at every connect: is this the node's one good credential, and which cell holds the node? */
  check(id: string, jti: string): ConnectCheck {
    const row = this.row(id);
    if (row === null) return { status: "unknown", cell: 0 };
    if (row.jti !== jti) return { status: "superseded", cell: row.cell };
    return { status: row.status, cell: row.cell };
  }

  /**
   * Active nodes per cell of each region that has any (revoked ones free their place;
   * expired ones keep it until revoked or re-enrolled, since their socket may still be open).
   */
  cellCounts(): { region: string; cell: number; hub: string; nodes: number }[] {
    return [...this.ctx.storage.sql.exec<{ region: string; cell: number; nodes: number }>("SELECT region, cell, nodes FROM cells WHERE nodes > 0 ORDER BY region, cell")].map(
      (row) => ({ ...row, hub: hubName(row.region, row.cell) }),
    );
  }

  list(): RegisteredNode[] {
    return [...this.ctx.storage.sql.exec<NodeRow>("SELECT * FROM nodes ORDER BY region, id")].map(toNode);
  }

  get(id: string): RegisteredNode | null {
    const row = this.row(id);
    return row === null ? null : toNode(row);
  }

  async createJoinToken(request: JoinTokenRequest, actor: string): Promise<{ token: string; info: JoinTokenInfo }> {
    const id = crypto.randomUUID().slice(0, 8);
    const token = `${JOIN_TOKEN_PREFIX}${toBase64Url(crypto.getRandomValues(new Uint8Array(32)))}`;
    const now = Date.now();
    this.ctx.storage.sql.exec(
      "INSERT INTO join_tokens (id, hash, scope, uses, uses_left, expires_at, created_at, created_by, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      id, await joinTokenHash(token), JSON.stringify(request.scope), request.uses, request.uses, now + request.ttlSeconds * 1000, now, actor, request.note ?? null,
    );
    this.audit(actor, "join-token.create", null, `token ${id}: ${request.uses} use(s), ${request.ttlSeconds} s, scope ${JSON.stringify(request.scope)}`);
    const info = this.tokenInfo(id);
    if (info === null) throw new Error("join token vanished");
    return { token, info };
  }

  listJoinTokens(): JoinTokenInfo[] {
    return [...this.ctx.storage.sql.exec<TokenRow>("SELECT * FROM join_tokens ORDER BY created_at DESC")].map(toTokenInfo);
  }

  revokeJoinToken(id: string, actor: string): boolean {
    const changed = this.ctx.storage.sql.exec("UPDATE join_tokens SET revoked = 1 WHERE id = ? AND revoked = 0", id).rowsWritten > 0;
    if (changed) this.audit(actor, "join-token.revoke", null, `token ${id}`);
    return changed;
  }

  auditLog(limit = 200): RegistryAuditEntry[] {
    return [...this.ctx.storage.sql.exec<{ at: number; actor: string; action: string; node: string | null; detail: string }>("SELECT at, actor, action, node, detail FROM audit ORDER BY seq DESC LIMIT ?", limit)].map(
      (r) => ({ at: new Date(r.at).toISOString(), actor: r.actor, action: r.action, node: r.node, detail: r.detail }),
    );
  }

  private tokenInfo(id: string): JoinTokenInfo | null {
    const row = [...this.ctx.storage.sql.exec<TokenRow>("SELECT * FROM join_tokens WHERE id = ?", id)][0];
    return row === undefined ? null : toTokenInfo(row);
  }

  private row(id: string): NodeRow | null {
    return [...this.ctx.storage.sql.exec<NodeRow>("SELECT * FROM nodes WHERE id = ?", id)][0] ?? null;
  }

  /**
   * The cell for a node enrolling in a region (`existing`: its row, if any): its current cell
   * while that has room, else the lowest with room. The node's own place, if it holds one,
   * is taken off the count.
   */
  private cellFor(region: string, existing: NodeRow | null): number | null {
    const rows = this.ctx.storage.sql.exec<{ cell: number; nodes: number }>("SELECT cell, nodes FROM cells WHERE region = ?", region);
    const counts = new Map([...rows].map((row) => [row.cell, row.nodes]));
    const stays = existing !== null && existing.region === region;
    if (stays && existing.status === "active") counts.set(existing.cell, (counts.get(existing.cell) ?? 1) - 1);
    return assignCell(counts, parseCellCapacity(this.env.HUB_CELL_CAPACITY), stays ? existing.cell : null);
  }

  private countInCell(region: string, cell: number, delta: 1 | -1): void {
    this.ctx.storage.sql.exec(
      "INSERT INTO cells (region, cell, nodes) VALUES (?, ?, MAX(0, ?)) ON CONFLICT (region, cell) DO UPDATE SET nodes = MAX(0, nodes + ?)",
      region, cell, delta, delta,
    );
  }

  /** Tells the node's hub: the credential is dead there (also for a connect still on its way) and its socket closes. */
  private async closeSockets(row: NodeRow, reason: string): Promise<boolean> {
    try {
      return await regionHub(this.env, row.region, row.cell).revoke(row.id, row.jti, reason);
    } catch (err) {
      console.error(JSON.stringify({ at: "registry.revoke", node: row.id, region: row.region, cell: row.cell, error: String(err) }));
      return false;
    }
  }

  private audit(actor: string, action: string, node: string | null, detail: string): void {
    this.ctx.storage.sql.exec("INSERT INTO audit (at, actor, action, node, detail) VALUES (?, ?, ?, ?, ?)", Date.now(), actor, action, node, detail);
  }
}

function toNode(row: NodeRow): RegisteredNode {
  return {
    id: row.id,
    region: row.region,
    hub: hubName(row.region, row.cell),
    kind: row.kind,
    credentialId: row.jti,
    status: row.status,
    enrolledAt: new Date(row.enrolled_at).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
    enrolledBy: row.enrolled_by,
    ...(row.revoked_at !== null ? { revokedAt: new Date(row.revoked_at).toISOString() } : {}),
    ...(row.revoked_reason !== null ? { revokedReason: row.revoked_reason } : {}),
  };
}

function toTokenInfo(row: TokenRow): JoinTokenInfo {
  return {
    id: row.id,
    scope: JSON.parse(row.scope) as JoinTokenScope,
    uses: row.uses,
    usesLeft: row.uses_left,
    expiresAt: new Date(row.expires_at).toISOString(),
    createdAt: new Date(row.created_at).toISOString(),
    createdBy: row.created_by,
    ...(row.note !== null ? { note: row.note } : {}),
    revoked: row.revoked === 1,
  };
}
