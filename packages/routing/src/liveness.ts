import type { NodeHealth } from "@meridian/protocol";

/**
 * Failure detection, phi-accrual style (Hayashibara et al.), fitted to how agents send frames.
 *
 * An agent sends one frame per interval at its nominal time plus network/timer jitter, and a
 * frame is now and then lost. So the silence after a frame from a live node ends with the next
 * frame (about one mean gap later, spread by the jitter deviation) or, if k frames in a row
 * were lost, about k + 1 mean gaps later:
 *
 *   P(silence >= t | alive) = sum over k >= 0 of p^k (1 - p) Q((t - (k + 1) mean) / sd)
 *
 * with Q the normal upper tail and p the loss rate. phi(t) = -log10 of that. A node is
 * `suspect` when its next frame is overdue (phi with p = 0 above PHI_SUSPECT: routable, last
 * choice) and `down` when even a lost frame or two no longer explain the silence (phi with
 * p = DESIGN_LOSS_RATE above PHI_DOWN). Mean and deviation adapt per node from the gaps it
 * actually shows; the deviation has a floor so a node with a perfectly regular past is not
 * judged on a razor's edge.
 *
 * The loss rate is not estimated per node: at 1 % a node loses a frame every 100 s or so,
 * far too rarely to estimate within minutes, and the down deadline is very sensitive to it
 * (the three-frames-lost term). The detector assumes DESIGN_LOSS_RATE instead.
 *
 * Everything here is pure; the hub keeps ArrivalStats in each socket's attachment (memory
 * that survives hibernation) and never writes storage for it.
 */

/** Loss rate the down threshold is designed for. */
export const DESIGN_LOSS_RATE = 0.01;
/** Next frame overdue: about 1 in 1,000 healthy gaps (mean + 3.1 sd). */
export const PHI_SUSPECT = 3;
/**
 * Silence that frame loss at DESIGN_LOSS_RATE explains only about 3 times in a million
 * gaps. At 1 s, +-200 ms, this lands near 3.3 s: after two lost frames in a row (1 in
 * 10,000 gaps) and before the 3.5 s goal. Three lost in a row (1 in a million) still looks
 * like death: that is the price of the goal.
 */
export const PHI_DOWN = 5.5;
/** Deviation floor: max(this, FLOOR_SHARE_OF_INTERVAL x interval). */
export const MIN_SD_MS = 100;
export const FLOOR_SHARE_OF_INTERVAL = 0.1;
/** Before any sample: the deviation assumed for a new node, as a share of its interval. */
export const PRIOR_SD_SHARE_OF_INTERVAL = 0.2;
/** EWMA weight of one gap: the last 30 to 60 gaps weigh in. */
export const GAP_EWMA_WEIGHT = 1 / 32;
/** Silence always means down past this many intervals, however jittery the node's past. */
export const MAX_DOWN_INTERVALS = 5;

/** Fresh-frame checks, one interval apart, a down node needs before it is routable again. */
export const RECOVERY_GOOD_CHECKS = 2;
/** Downs within this window make recovery slower: one more good check per extra down. */
export const FLAP_WINDOW_MS = 5 * 60_000;
export const MAX_RECOVERY_GOOD_CHECKS = 10;

/** Inter-arrival statistics of one node's frames, small enough for a socket attachment. */
export interface ArrivalStats {
  /** When the last frame arrived, ms since the epoch. */
  lastArrivalAt: number;
  /** EWMA of the gap between frames, losses folded out (see observeArrival). */
  meanGapMs: number;
  /** EWMA of the squared deviation of the gap. */
  gapVarianceMs2: number;
  /** Gaps folded in so far. */
  samples: number;
  /** Frames presumed lost (a gap of about k + 1 intervals counts k). */
  lostFrames: number;
  /** Silence after which the node is suspect / down, from the statistics above. */
  suspectAfterMs: number;
  downAfterMs: number;
}

export function newArrivalStats(heartbeatMs: number, arrivedAt: number): ArrivalStats {
  const sd = heartbeatMs * PRIOR_SD_SHARE_OF_INTERVAL;
  return withDeadlines({ lastArrivalAt: arrivedAt, meanGapMs: heartbeatMs, gapVarianceMs2: sd * sd, samples: 0, lostFrames: 0, suspectAfterMs: 0, downAfterMs: 0 }, heartbeatMs);
}

/**
 * Folds a frame that arrived at `arrivedAt` into the statistics (unchanged when it is not
 * newer than the last one). A gap of about k + 1 intervals is k lost frames plus one gap of
 * jitter: only that last part feeds mean and deviation, so losses are not mistaken for
 * jitter (one lost frame would otherwise double the deviation for a minute). Gaps under half
 * an interval are frames off the agent's rhythm (hello, drain), not samples.
 */
export function observeArrival(stats: ArrivalStats, arrivedAt: number, heartbeatMs: number): ArrivalStats {
  const gap = arrivedAt - stats.lastArrivalAt;
  if (gap <= 0) return stats;
  if (gap < heartbeatMs / 2) return { ...stats, lastArrivalAt: arrivedAt };
  const lost = Math.max(0, Math.round(gap / heartbeatMs) - 1);
  const folded = gap - lost * heartbeatMs;
  const deviation = folded - stats.meanGapMs;
  const meanGapMs = stats.meanGapMs + GAP_EWMA_WEIGHT * deviation;
  const gapVarianceMs2 = (1 - GAP_EWMA_WEIGHT) * (stats.gapVarianceMs2 + GAP_EWMA_WEIGHT * deviation * deviation);
  return withDeadlines({ ...stats, lastArrivalAt: arrivedAt, meanGapMs, gapVarianceMs2, samples: stats.samples + 1, lostFrames: stats.lostFrames + lost }, heartbeatMs);
}

/** The deviation phi works with: the observed one, floored. */
export function flooredSdMs(stats: ArrivalStats, heartbeatMs: number): number {
  return Math.max(MIN_SD_MS, FLOOR_SHARE_OF_INTERVAL * heartbeatMs, Math.sqrt(stats.gapVarianceMs2));
}

/** Suspicion level after `silentMs` without a frame, if the node loses frames at `lossRate`. */
export function phi(silentMs: number, stats: ArrivalStats, heartbeatMs: number, lossRate: number): number {
  const p = silenceProbability(silentMs, stats.meanGapMs, flooredSdMs(stats, heartbeatMs), lossRate);
  return p <= 0 ? Number.POSITIVE_INFINITY : -Math.log10(p);
}

function withDeadlines(stats: ArrivalStats, heartbeatMs: number): ArrivalStats {
  const sd = flooredSdMs(stats, heartbeatMs);
  // Without loss the mixture is one normal tail: the limit has a closed form.
  const suspectAfterMs = Math.min(MAX_DOWN_INTERVALS * heartbeatMs, Math.ceil(stats.meanGapMs + SUSPECT_Z * sd));
  const downAfterMs = Math.max(suspectAfterMs, silenceAtPhi(PHI_DOWN, stats.meanGapMs, sd, DESIGN_LOSS_RATE, heartbeatMs));
  return { ...stats, suspectAfterMs, downAfterMs };
}

/**
 * P(silence >= t | alive): the mixture over how many frames in a row were lost. Terms whose
 * weight is under `negligible` are left out (they cannot move a comparison at that scale).
 */
function silenceProbability(t: number, mean: number, sd: number, lossRate: number, negligible = 1e-15): number {
  let total = 0;
  let lostRun = 1 - lossRate; // p^k (1 - p)
  for (let k = 0; k < 12 && lostRun > negligible; k++) {
    total += lostRun * normalTail((t - (k + 1) * mean) / sd);
    lostRun *= lossRate;
  }
  return total;
}

/** The silence (whole ms) at which phi reaches `threshold`; capped at MAX_DOWN_INTERVALS. */
function silenceAtPhi(threshold: number, mean: number, sd: number, lossRate: number, heartbeatMs: number): number {
  const target = 10 ** -threshold;
  const negligible = target * 1e-4;
  const cap = MAX_DOWN_INTERVALS * heartbeatMs;
  if (silenceProbability(cap, mean, sd, lossRate, negligible) > target) return cap;
  // The probability falls as silence grows: bisect for the first whole ms at or under target.
  let lo = 0;
  let hi = cap;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (silenceProbability(mid, mean, sd, lossRate, negligible) > target) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** z with Q(z) = 10^-PHI_SUSPECT (about 3.09), solved once. */
const SUSPECT_Z = ((): number => {
  let lo = 0;
  let hi = 40;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (normalTail(mid) > 10 ** -PHI_SUSPECT) lo = mid;
    else hi = mid;
  }
  return hi;
})();

/** Upper tail of the standard normal, Q(z) = erfc(z / sqrt 2) / 2. */
export function normalTail(z: number): number {
  return erfc(z / Math.SQRT2) / 2;
}

/** Complementary error function (Numerical Recipes erfcc; relative error under 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

export interface Liveness {
  health: NodeHealth;
  reason: string;
  /** Consecutive fresh checks while down. */
  goodChecks: number;
  /** When the node went down recently (flap damping). */
  recentDowns: number[];
}

export interface LivenessStep extends Liveness {
  changed: boolean;
  /** When this node next needs looking at. */
  nextCheckAt: number;
}

/** What one check judges silence against: the node's interval and its detector's deadlines. */
export interface SilenceLimits {
  heartbeatMs: number;
  suspectAfterMs: number;
  downAfterMs: number;
}

/**
 * One liveness check of one node. Pure: the hub calls it from its sweep with the time since
 * the node's last frame (pings included) and the deadlines of its detector. Suspicion before
 * down, and proof of life before up, trade a little speed for far fewer false alarms and flaps.
 */
export function stepLiveness(current: Liveness, silentMs: number, limits: SilenceLimits, now: number): LivenessStep {
  const { heartbeatMs, suspectAfterMs, downAfterMs } = limits;
  const lastSeen = now - silentMs;
  const recentDowns = current.recentDowns.filter((t) => now - t < FLAP_WINDOW_MS);
  const same = (nextCheckAt: number): LivenessStep => ({ ...current, recentDowns, changed: false, nextCheckAt });
  const to = (health: NodeHealth, reason: string, nextCheckAt: number, extra: Partial<Liveness> = {}): LivenessStep => ({
    health,
    reason,
    goodChecks: 0,
    recentDowns,
    ...extra,
    changed: true,
    nextCheckAt,
  });

  switch (current.health) {
    case "draining":
      return same(lastSeen + downAfterMs + 1);
    case "healthy":
    case "suspect":
      if (silentMs > downAfterMs) {
        return to("down", `heartbeat timeout: silent for ${silentMs} ms (limit ${downAfterMs} ms)`, now + heartbeatMs, { recentDowns: [...recentDowns, now] });
      }
      if (silentMs > suspectAfterMs) {
        return current.health === "suspect" ? same(lastSeen + downAfterMs + 1) : to("suspect", `silent for ${silentMs} ms (expected a frame within ${suspectAfterMs} ms)`, lastSeen + downAfterMs + 1);
      }
      if (current.health === "suspect") return to("healthy", "heartbeat resumed", lastSeen + suspectAfterMs + 1);
      return same(lastSeen + suspectAfterMs + 1);
    case "down": {
      const needed = Math.min(MAX_RECOVERY_GOOD_CHECKS, RECOVERY_GOOD_CHECKS + Math.max(0, recentDowns.length - 1));
      if (silentMs >= heartbeatMs) return { ...same(now + heartbeatMs), goodChecks: 0, changed: current.goodChecks !== 0 };
      const goodChecks = current.goodChecks + 1;
      if (goodChecks >= needed) return to("healthy", `heartbeat resumed (${goodChecks} good checks)`, lastSeen + suspectAfterMs + 1);
      return { ...current, recentDowns, goodChecks, reason: `recovering: ${goodChecks}/${needed} good checks`, changed: true, nextCheckAt: now + heartbeatMs };
    }
  }
}
