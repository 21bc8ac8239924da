/**
 * The failure detector alone (packages/routing liveness.ts), against the simulator's frame
 * model: one frame per interval at its nominal time plus a uniform offset in +-jitter, each
 * lost with probability `loss`. No processes, no clock: millions of gaps in seconds, so rare
 * events (two or three lost frames in a row) show up in numbers the live failover benchmark
 * cannot reach in 2 minutes.
 *
 * Prints, per setting: where the suspect and down limits land (they adapt per node), the
 * expected false downs and suspicions per 1,000 nodes x 2 minutes, and the silent detection
 * latency of a node frozen at a random moment (limit minus the time since its last frame;
 * the hub's sweep runs at the limit). The fixed limits used before (down at 2.5 intervals)
 * are judged on the same frames for comparison.
 */
import { seededRandom } from "@meridian/node-agent";
import { newArrivalStats, observeArrival } from "@meridian/routing";
import { percentile, printTable } from "./lib/stats";

const HEARTBEAT_MS = 1000;
const WARMUP_GAPS = 100;
/** The previous fixed limit, for comparison. */
const FIXED_DOWN_INTERVALS = 2.5;

interface Setting {
  jitterMs: number;
  loss: number;
}

function simulate(setting: Setting, nodes: number, gapsPerNode: number, seed: number) {
  const random = seededRandom(seed);
  const downLimits: number[] = [];
  const suspectLimits: number[] = [];
  const silentDetection: number[] = [];
  let gaps = 0;
  let falseDowns = 0;
  let falseSuspects = 0;
  let fixedFalseDowns = 0;
  for (let n = 0; n < nodes; n++) {
    let stats = newArrivalStats(HEARTBEAT_MS, 0);
    for (let k = 1; k <= gapsPerNode + WARMUP_GAPS; k++) {
      const at = k * HEARTBEAT_MS + (random() * 2 - 1) * setting.jitterMs;
      if (random() < setting.loss) continue;
      if (k > WARMUP_GAPS) {
        const gap = at - stats.lastArrivalAt;
        gaps++;
        if (gap > stats.downAfterMs) falseDowns++;
        if (gap > stats.suspectAfterMs) falseSuspects++;
        if (gap > FIXED_DOWN_INTERVALS * HEARTBEAT_MS) fixedFalseDowns++;
        if (k % 50 === 0) {
          downLimits.push(stats.downAfterMs);
          suspectLimits.push(stats.suspectAfterMs);
          // Frozen at a random moment before this frame would have come: detected at the limit.
          const frozenAfter = random() * gap;
          silentDetection.push(stats.downAfterMs - frozenAfter);
        }
      }
      stats = observeArrival(stats, at, HEARTBEAT_MS);
    }
  }
  const perRun = (count: number) => Math.round((count / gaps) * 1000 * 120 * 100) / 100;
  downLimits.sort((a, b) => a - b);
  suspectLimits.sort((a, b) => a - b);
  silentDetection.sort((a, b) => a - b);
  return {
    gaps,
    suspectP50: percentile(suspectLimits, 50),
    downP1: percentile(downLimits, 1),
    downP50: percentile(downLimits, 50),
    downP99: percentile(downLimits, 99),
    silentP50: percentile(silentDetection, 50),
    silentP99: percentile(silentDetection, 99),
    falseDownsPerRun: perRun(falseDowns),
    falseSuspectsPerRun: perRun(falseSuspects),
    fixedFalseDownsPerRun: perRun(fixedFalseDowns),
  };
}

export function runDetectorBench(options: { smoke: boolean }): Record<string, number> {
  const nodes = options.smoke ? 100 : 1000;
  const gapsPerNode = options.smoke ? 500 : 2000;
  const settings: Setting[] = [
    { jitterMs: 200, loss: 0.01 },
    { jitterMs: 0, loss: 0.01 },
    { jitterMs: 200, loss: 0.03 },
    { jitterMs: 400, loss: 0.01 },
  ];
  const results: Record<string, number> = {};
  const rows = settings.map((setting, i) => {
    const r = simulate(setting, nodes, gapsPerNode, 1 + i);
    if (i === 0) {
      results.detector_false_downs_per_1k_nodes_2min = r.falseDownsPerRun;
      results.detector_silent_ms_p99 = Math.round(r.silentP99);
      results.detector_fixed_false_downs_per_1k_nodes_2min = r.fixedFalseDownsPerRun;
    }
    const ms = (x: number) => Math.round(x);
    return {
      setting: `+-${setting.jitterMs} ms, ${setting.loss * 100} % loss`,
      gaps: r.gaps,
      "suspect limit p50": ms(r.suspectP50),
      "down limit p1/p50/p99": `${ms(r.downP1)} / ${ms(r.downP50)} / ${ms(r.downP99)}`,
      "silent detection p50/p99": `${ms(r.silentP50)} / ${ms(r.silentP99)}`,
      "false downs per 1k nodes x 2 min": r.falseDownsPerRun,
      "suspicions per 1k x 2 min": r.falseSuspectsPerRun,
      "fixed 2.5-interval limit: false downs": r.fixedFalseDownsPerRun,
    };
  });
  printTable(`Failure detector alone, 1 s heartbeats, ${nodes} nodes x ${gapsPerNode} gaps per setting (ms)`, rows);
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(runDetectorBench({ smoke: process.argv.includes("--smoke") })));
}
