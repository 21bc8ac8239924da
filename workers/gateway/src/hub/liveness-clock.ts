import { DurableObject } from "cloudflare:workers";
import { CLOCK_TIMING, WakeSchedule, alarmMustMove, clockAlarmAt, wakeLanes } from "@meridian/routing";
import { hubNamed } from "../durable";

/**
 * Wakes region hubs (every cell, by hub name) for their liveness sweeps (see packages/routing wake-schedule.ts for why
 * one clock instead of an alarm per hub). A hub asks to be woken by a deadline when a node
 * joins; after each sweep it answers with its next deadline, so the timetable keeps itself.
 *
 * Storage: the names of the hubs ever signed up (one write per hub, ever) and the clock's own
 * alarm (at most one write per tick). The deadlines are in memory: after a restart every
 * known hub is swept once and answers with its next one. Each hub keeps a distant alarm of
 * its own as a backstop, so a lost clock slows liveness down but never stops it.
 *
 * One clock wakes about a thousand hubs a second comfortably (one small RPC each); a fleet
 * with more hubs than that shards the clocks by hub name (docs/scale.md).
 */
export class LivenessClock extends DurableObject<Env> {
  private readonly schedule = new WakeSchedule();
  private readonly known = new Set<string>();
  /** The alarm as this instance last set it (null: none, or it has fired). */
  private alarmAt: number | null = null;
  private lastFiredAt = 0;
  /** Wake-ups made and hubs that could not be reached, for /metrics. */
  private wakes = 0;
  private misses = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS hubs (name TEXT PRIMARY KEY)");
    const now = Date.now();
    for (const row of ctx.storage.sql.exec<{ name: string }>("SELECT name FROM hubs")) {
      this.known.add(row.name);
      this.schedule.wakeBy(row.name, now);
    }
    if (this.known.size > 0) ctx.waitUntil(this.arm());
  }

  /** Wake hub `name` no later than `at` (a hub calls this when a node joins it). */
  async wakeBy(name: string, at: number): Promise<void> {
    if (!this.known.has(name)) {
      this.ctx.storage.sql.exec("INSERT OR IGNORE INTO hubs (name) VALUES (?)", name);
      this.known.add(name);
    }
    this.schedule.wakeBy(name, at);
    await this.arm();
  }

  stats(): { hubs: number; waiting: number; wakes: number; misses: number } {
    return { hubs: this.known.size, waiting: this.schedule.size, wakes: this.wakes, misses: this.misses };
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    this.lastFiredAt = now;
    this.alarmAt = null;
    const due = this.schedule.takeDue(now);
    // A few lanes, each waking the next due hub when its last one answered (see wakeLanes).
    const lane = async (): Promise<void> => {
      for (let name = due.pop(); name !== undefined; name = due.pop()) await this.wake(name);
    };
    await Promise.all(Array.from({ length: wakeLanes(due.length) }, lane));
    await this.arm();
  }

  private async wake(name: string): Promise<void> {
    try {
      this.wakes++;
      this.schedule.set(name, await hubNamed(this.env, name).sweepNow());
    } catch (err) {
      this.misses++;
      this.schedule.wakeBy(name, Date.now() + CLOCK_TIMING.retryMs);
      console.error(JSON.stringify({ at: "clock.wake", hub: name, error: String(err) }));
    }
  }

  /** Sets the alarm for the earliest deadline when it must move (a write at most once a tick). */
  private async arm(): Promise<void> {
    const wanted = clockAlarmAt(this.schedule.earliest(), this.lastFiredAt);
    if (!alarmMustMove(this.alarmAt, wanted) || wanted === null) return;
    this.alarmAt = wanted;
    await this.ctx.storage.setAlarm(wanted);
  }
}
