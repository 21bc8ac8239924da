/**
 * Which nodes this hub has told the Directory about, in SQLite: the only thing a hub writes
 * per node, and only when a node joins or leaves. After a restart, members without a live
 * socket are reported gone.
 */
export class Membership {
  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS members (id TEXT PRIMARY KEY, region TEXT NOT NULL, joined_at INTEGER NOT NULL)");
  }

  join(id: string, region: string, at: number): void {
    this.sql.exec("INSERT OR REPLACE INTO members (id, region, joined_at) VALUES (?, ?, ?)", id, region, at);
  }

  leave(id: string): void {
    this.sql.exec("DELETE FROM members WHERE id = ?", id);
  }

  list(): { id: string; region: string }[] {
    return [...this.sql.exec<{ id: string; region: string }>("SELECT id, region FROM members")];
  }
}
