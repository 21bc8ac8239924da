import { compilePolicy, type CompiledPolicy } from "@meridian/policy";
import type { CarrierPartner } from "@meridian/protocol";
import { FleetIndex } from "@meridian/routing";
import { decodeFleetAnswer, type FleetAnswer } from "@meridian/protocol";
import { carrierStore, directory, policyStore } from "./durable";

/** Older than this, a snapshot is refreshed in the background while it keeps serving. */
export const SNAPSHOT_REFRESH_MS = 150;
/** Older than this (an isolate that sat idle), a snapshot is not trusted: the request waits for a fresh one. */
export const SNAPSHOT_MAX_AGE_MS = 2000;

export interface EdgeView {
  index: FleetIndex;
  /** null until a policy version has been loaded: callers must then refuse (fail closed). */
  policy: CompiledPolicy | null;
  /** Carrier partners by id, as of `carriersVersion` (0: none published yet). */
  carriers: ReadonlyMap<string, CarrierPartner>;
  carriersVersion: number;
}

const log = (at: string, err: unknown, extra: Record<string, unknown> = {}) => console.error(JSON.stringify({ at, error: String(err), ...extra }));

/**
 * What this isolate knows: a versioned copy of the Directory's fleet and the compiled
 * policy, refreshed in the background (stale-while-revalidate). The snapshot carries the
 * policy version, so a publish reaches every isolate with its next refresh. Only a cold
 * or long-idle isolate waits.
 */
export class FleetCache {
  private epoch: string | null = null;
  private version = 0;
  private index: FleetIndex | null = null;
  private policy: CompiledPolicy | null = null;
  private carriers: ReadonlyMap<string, CarrierPartner> = new Map();
  private carriersVersion = 0;
  private fetchedAt = 0;
  private refreshing = false;

  /**
   * The view, synchronously when this isolate's copy is warm (the hot path: no await, no
   * promise), or a promise when it must wait for the Directory first.
   */
  view(env: Env, waitUntil: (p: Promise<unknown>) => void, now = Date.now()): EdgeView | Promise<EdgeView> {
    if (this.index === null || this.policy === null) {
      // Cold: wait. If that fails, the view has no policy and the caller refuses (fail closed).
      return this.refresh(env).then(
        () => this.current(),
        (err: unknown) => (log("fleet.refresh", err, { cold: true }), this.current()),
      );
    }
    if (now - this.fetchedAt > SNAPSHOT_MAX_AGE_MS) {
      // Better an old fleet than none if the Directory is briefly unreachable; the proxy's retry covers dead nodes.
      return this.refresh(env).then(
        () => this.current(),
        (err: unknown) => (log("fleet.refresh", err, { stale: true }), this.current()),
      );
    }
    if (now - this.fetchedAt > SNAPSHOT_REFRESH_MS && !this.refreshing) {
      waitUntil(this.refresh(env).catch((err: unknown) => log("fleet.refresh", err)));
    }
    return this.current();
  }

  /** The view, waiting when it must (callers off the hot path). */
  async get(env: Env, waitUntil: (p: Promise<unknown>) => void, now = Date.now()): Promise<EdgeView> {
    return this.view(env, waitUntil, now);
  }

  private current(): EdgeView {
    return { index: this.index ?? new FleetIndex([]), policy: this.policy, carriers: this.carriers, carriersVersion: this.carriersVersion };
  }

  get snapshotVersion(): number {
    return this.version;
  }

  get policyVersion(): number | null {
    return this.policy?.version ?? null;
  }

  async refresh(env: Env): Promise<void> {
    this.refreshing = true;
    try {
      const [bytes] = await Promise.all([directory(env).feedSince(this.epoch, this.version), this.policy === null ? this.loadPolicy(env) : null]);
      const answer = decodeFleetAnswer(bytes);
      this.apply(answer);
      this.fetchedAt = Date.now();
      if (this.policy !== null && answer.policyVersion > this.policy.version) {
        // A failed load keeps the last good version in force.
        await this.loadPolicy(env).catch((err: unknown) => log("policy.load", err, { wanted: answer.policyVersion, inForce: this.policy?.version }));
      }
      if (answer.carriersVersion > this.carriersVersion) {
        await this.loadCarriers(env).catch((err: unknown) => log("carriers.load", err, { wanted: answer.carriersVersion, inForce: this.carriersVersion }));
      }
    } finally {
      this.refreshing = false;
    }
  }

  private async loadPolicy(env: Env): Promise<void> {
    const current = await policyStore(env).current();
    if (this.policy === null || current.version > this.policy.version) {
      this.policy = compilePolicy(current.document, current.version);
      console.log(JSON.stringify({ at: "policy.loaded", version: current.version }));
    }
  }

  private async loadCarriers(env: Env): Promise<void> {
    const current = await carrierStore(env).current();
    if (current.version > this.carriersVersion) {
      this.carriers = new Map(current.document.partners.map((p) => [p.id, p]));
      this.carriersVersion = current.version;
      console.log(JSON.stringify({ at: "carriers.loaded", version: current.version, partners: this.carriers.size }));
    }
  }

  /**
   * A full answer builds a new index; a delta is applied to the one in place (decisions are
   * synchronous, so each sees one version).
   */
  private apply(answer: FleetAnswer): void {
    if (answer.kind === "full") this.index = new FleetIndex(answer.nodes);
    else (this.index ??= new FleetIndex([])).apply(answer.updates);
    this.epoch = answer.epoch;
    this.version = answer.version;
  }
}
