/** Applied ids are kept this long: far longer than any write is retried. */
const APPLIED_RETENTION_MS = 24 * 3600_000;
/** Old ids are pruned once per this many writes. */
const PRUNE_EVERY = 10_000;

/**
 * The ids of the batches a ledger object has applied, in its own SQLite next to its rows: a
 * batch is applied in one transaction together with its id, so a batch retried after a crash
 * or a lost answer is counted exactly once. Each ledger keeps its own rows and tables; this is
 * the part they share.
 */
export class AppliedBatches {
  private writesSincePrune = 0;

  constructor(private readonly storage: DurableObjectStorage) {
    storage.sql.exec("CREATE TABLE IF NOT EXISTS applied (id TEXT PRIMARY KEY, at INTEGER NOT NULL)");
    storage.sql.exec("CREATE INDEX IF NOT EXISTS applied_at ON applied (at)");
  }

  /** Runs `apply` with the id recorded, in one transaction, unless the id was applied before; true when it ran. */
  applyOnce(id: string, apply: () => void, now = Date.now()): boolean {
    const sql = this.storage.sql;
    let applied = false;
    this.storage.transactionSync(() => {
      if (sql.exec("SELECT 1 FROM applied WHERE id = ?", id).toArray().length > 0) return;
      sql.exec("INSERT INTO applied (id, at) VALUES (?, ?)", id, now);
      apply();
      applied = true;
    });
    if (++this.writesSincePrune > PRUNE_EVERY) {
      this.writesSincePrune = 0;
      sql.exec("DELETE FROM applied WHERE at < ?", now - APPLIED_RETENTION_MS);
    }
    return applied;
  }
}
