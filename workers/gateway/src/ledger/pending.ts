/**
 * Entries waiting to be written to a ledger, summed per ledger and per row key (pure: no I/O,
 * no clock). Both ledgers (the tenants' usage, the carriers' offload) batch this way: many
 * requests of one key in one batch window become one delta.
 */
export interface DeltaRules<Entry, Delta> {
  /** The ledger row an entry adds to (its primary key, as a string). */
  keyOf(entry: Entry): string;
  /** A delta of no requests for the entry's row. */
  empty(entry: Entry): Delta;
  /** Adds one entry to its row's delta. */
  add(delta: Delta, entry: Entry): void;
}

export class PendingDeltas<Entry, Delta> {
  private byLedger = new Map<string, Map<string, Delta>>();

  constructor(private readonly rules: DeltaRules<Entry, Delta>) {}

  get size(): number {
    return this.byLedger.size;
  }

  add(ledger: string, entry: Entry): void {
    let deltas = this.byLedger.get(ledger);
    if (deltas === undefined) this.byLedger.set(ledger, (deltas = new Map()));
    const key = this.rules.keyOf(entry);
    let delta = deltas.get(key);
    if (delta === undefined) deltas.set(key, (delta = this.rules.empty(entry)));
    this.rules.add(delta, entry);
  }

  /** Everything pending, per ledger, and an empty book for what comes next. */
  take(): [ledger: string, deltas: Delta[]][] {
    const taken = [...this.byLedger].map(([ledger, deltas]): [string, Delta[]] => [ledger, [...deltas.values()]]);
    this.byLedger = new Map();
    return taken;
  }
}
