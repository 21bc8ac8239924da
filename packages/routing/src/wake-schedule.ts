/**
 * The liveness clock's timetable, as pure code: when each hub next needs a liveness sweep.
 *
 * A hub's sockets hibernate, so nothing in the hub runs between events: its sweeps need a
 * wake-up from outside. A Durable Object alarm per hub would do it, but every `setAlarm` is a
 * durable storage write (an fsync locally, a billed write in production), re-armed after each
 * sweep: about one write per hub per second. One clock for all hubs holds their deadlines in
 * memory and wakes each when due; only the clock's own alarm is written, at most once per
 * tick, whatever the number of hubs and nodes.
 */
export const CLOCK_TIMING = {
  /** The clock fires at most this often; a deadline between ticks waits for the next one. */
  tickMs: 250,
  /** A hub the clock could not reach is tried again this much later. */
  retryMs: 1000,
  /**
   * Each hub still arms its own alarm this far out: if the clock's wake-ups stop (the clock is
   * unreachable or lost its timetable), the hub sweeps by itself and signs up again.
   */
  backstopMs: 60_000,
  /**
   * Wake-ups in flight at once, at least. Hubs due in the same tick are woken a few at a time,
   * so that where hubs share a thread with client requests (one process locally) a tick's
   * sweeps interleave with requests instead of holding them for the whole burst.
   */
  wakesInFlight: 4,
  /**
   * Hubs one lane wakes in a row, at most: more hubs due in a tick open more lanes, so a tick's
   * wake-ups take about this many RPC round trips however many hubs there are.
   */
  wakesPerLane: 8,
} as const;

/** How many wake-ups a tick with `due` hubs keeps in flight (see CLOCK_TIMING). */
export function wakeLanes(due: number): number {
  return Math.min(due, Math.max(CLOCK_TIMING.wakesInFlight, Math.ceil(due / CLOCK_TIMING.wakesPerLane)));
}

export class WakeSchedule {
  private readonly due = new Map<string, number>();

  /** Wake `name` at `at`, or earlier if it is due earlier already (a join may not push a sweep back). */
  wakeBy(name: string, at: number): void {
    const current = this.due.get(name);
    if (current === undefined || at < current) this.due.set(name, at);
  }

  /** `name` next needs waking at `at` (what a hub answers after a sweep); null: not until it asks again. */
  set(name: string, at: number | null): void {
    if (at === null || !Number.isFinite(at)) this.due.delete(name);
    else this.due.set(name, at);
  }

  forget(name: string): void {
    this.due.delete(name);
  }

  /** Removes and returns every name due at `now` or before. */
  takeDue(now: number): string[] {
    const names: string[] = [];
    for (const [name, at] of this.due) {
      if (at <= now) {
        names.push(name);
        this.due.delete(name);
      }
    }
    return names;
  }

  /** The earliest deadline, or null when nobody is waiting. */
  earliest(): number | null {
    let min = Number.POSITIVE_INFINITY;
    for (const at of this.due.values()) if (at < min) min = at;
    return Number.isFinite(min) ? min : null;
  }

  get size(): number {
    return this.due.size;
  }
}

/**
 * When the clock's alarm should be set: the earliest deadline, but no sooner than a tick
 * after the last firing (so its own writes stay bounded). null: no alarm needed.
 */
export function clockAlarmAt(earliest: number | null, lastFiredAt: number): number | null {
  return earliest === null ? null : Math.max(earliest, lastFiredAt + CLOCK_TIMING.tickMs);
}

/**
 * Whether an alarm set for `current` must be moved to `wanted`: only earlier (a later wanted
 * time leaves it; the firing re-arms for what is due then), and not for a gain under a tick.
 */
export function alarmMustMove(current: number | null, wanted: number | null): boolean {
  if (wanted === null) return false;
  return current === null || wanted < current - CLOCK_TIMING.tickMs;
}
