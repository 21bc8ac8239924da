/**
 * Passive outlier detection from the data path (Envoy-style): consecutive connect errors or
 * 5xx answers eject a node for a time that doubles with each ejection, up to a cap. A region
 * never has more than `maxEjectedShare` of its nodes ejected, so a bad day does not empty it.
 * Pure state with an injectable clock; the gateway keeps one per isolate.
 */
export interface OutlierConfig {
  consecutiveFailures: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  maxEjectedShare: number;
  /** An ejection count older than this is forgotten (a node that behaved for long starts afresh). */
  forgetAfterMs: number;
}

export const DEFAULT_OUTLIER_CONFIG: OutlierConfig = {
  consecutiveFailures: 3,
  baseEjectionMs: 5_000,
  maxEjectionMs: 60_000,
  maxEjectedShare: 0.5,
  forgetAfterMs: 10 * 60_000,
};

interface NodeTrack {
  region: string;
  failures: number;
  ejections: number;
  ejectedUntil: number;
  lastEjectedAt: number;
  reason: string;
}

export interface Ejection {
  id: string;
  region: string;
  /** When this ejection began. */
  since: number;
  until: number;
  ejections: number;
  reason: string;
}

export class OutlierDetector {
  private readonly nodes = new Map<string, NodeTrack>();
  private ejectedCount = 0;

  constructor(
    private readonly config: OutlierConfig = DEFAULT_OUTLIER_CONFIG,
    private readonly now: () => number = Date.now,
  ) {}

  /** True while any node is ejected: lets the hot path skip the per-node check entirely. */
  get active(): boolean {
    if (this.ejectedCount === 0) return false;
    this.expire();
    return this.ejectedCount > 0;
  }

  isEjected(id: string): boolean {
    const track = this.nodes.get(id);
    return track !== undefined && track.ejectedUntil > this.now();
  }

  recordSuccess(id: string): void {
    const track = this.nodes.get(id);
    if (track !== undefined) track.failures = 0;
  }

  /**
   * Counts a failure; ejects the node when it reaches the threshold and the region can spare
   * it. `regionSize` is how many nodes the region has. Returns the ejection, if one began.
   */
  recordFailure(id: string, region: string, regionSize: number, reason: string): Ejection | null {
    const now = this.now();
    const track = this.nodes.get(id) ?? { region, failures: 0, ejections: 0, ejectedUntil: 0, lastEjectedAt: 0, reason: "" };
    this.nodes.set(id, track);
    if (track.ejectedUntil > now) return null;
    track.failures++;
    if (track.failures < this.config.consecutiveFailures) return null;
    this.expire();
    const ejectedInRegion = [...this.nodes.values()].filter((t) => t.region === region && t.ejectedUntil > now).length;
    if (ejectedInRegion + 1 > Math.floor(regionSize * this.config.maxEjectedShare)) return null;
    if (now - track.lastEjectedAt > this.config.forgetAfterMs) track.ejections = 0;
    const duration = Math.min(this.config.maxEjectionMs, this.config.baseEjectionMs * 2 ** track.ejections);
    track.ejections++;
    track.failures = 0;
    track.ejectedUntil = now + duration;
    track.lastEjectedAt = now;
    track.reason = reason;
    this.ejectedCount++;
    return { id, region, since: now, until: track.ejectedUntil, ejections: track.ejections, reason };
  }

  ejected(): Ejection[] {
    const now = this.now();
    return [...this.nodes.entries()]
      .filter(([, t]) => t.ejectedUntil > now)
      .map(([id, t]) => ({ id, region: t.region, since: t.lastEjectedAt, until: t.ejectedUntil, ejections: t.ejections, reason: t.reason }));
  }

  private expire(): void {
    const now = this.now();
    this.ejectedCount = [...this.nodes.values()].filter((t) => t.ejectedUntil > now).length;
  }
}
