/**
 * Scale simulation (issue 15), in process and on a simulated clock (nothing waits for real):
 * 100k nodes in 140 regions, 1 % of them changing state each second, one hub per region
 * batching changes to the primary Directory, the primary streaming delta frames to one
 * replica per continent, 330 colos each with a colo cache, K isolates per colo refreshing.
 * The tiers run the pure code of packages/routing/src/fleet-feed.ts (FleetLog, refreshAction,
 * coloEntryServes/coloEntryReplaces, streamFrameDue); payloads are sized with the fleet codec of
 * packages/protocol. Then, on real CPU time: an index of 100k nodes updated in place, and
 * routing on it.
 *
 *   node_modules/.bin/tsx bench/scale.ts [--smoke]
 */
import { planFleet, seededRandom } from "@meridian/node-agent";
import { agentLoad, encodeFleetAnswer, sortedById, type FleetAnswer, type NodeRecord, type NodeUpdate } from "@meridian/protocol";
import { REGIONS } from "@meridian/regions";
import { COLO_HEAD_KEY, FEED_TIMING, FleetIndex, FleetLog, REPLICAS, coloEntryReplaces, coloEntryServes, coloLease, refreshAction, replicaFor, streamFrameDue, type ColoEntry } from "@meridian/routing";
import { benchFixtures, type Query } from "./routing";
import os from "node:os";
import { printTable, summarize } from "./lib/stats";

const NODES = 100_000;
const CHANGE_SHARE_PER_S = 0.01;
const COLOS = 330;
/** Hub batching before a push to the Directory (workers/gateway region-hub PUSH_DELAY_MS). */
const HUB_PUSH_DELAY_MS = 25;
/** Busy isolates: requests per second each, so a refresh starts soon after it is due. */
const ISOLATE_REQUESTS_PER_S = 50;
const NOW0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const latency = (random: () => number, lo: number, hi: number) => lo + random() * (hi - lo);

// ---- a realistic fleet and its changes ---------------------------------------------------

interface Fleet {
  records: NodeRecord[];
  /** Per region: the hub's next seq (hubs count from their start time, as RegionHub does). */
  hubSeq: Map<string, number>;
  gone: NodeRecord[];
}

function makeFleet(random: () => number): Fleet {
  const hubSeq = new Map<string, number>(REGIONS.map((r) => [r.id, (NOW0 - Math.floor(random() * 86_400_000)) * 1000]));
  const records = planFleet({ nodes: NODES, seed: 0x5ca1e, prefix: "sim" }).map((planned): NodeRecord => {
    const h = random();
    const health = h < 0.03 ? "down" : h < 0.05 ? "draining" : "healthy";
    const inFlight = health === "down" ? 0 : Math.floor(random() * (planned.capacity + 1));
    const since = NOW0 - Math.floor(random() * 7 * 86_400_000);
    const seq = hubSeq.get(planned.region) ?? 0;
    hubSeq.set(planned.region, seq + 1);
    return {
      id: planned.id,
      kind: planned.kind,
      region: planned.region,
      ...(planned.gpu ? { gpu: { ...planned.gpu } } : {}),
      ...(planned.kind === "hotspot" ? { maxMbps: 100, tier: 1 + Math.floor(random() * 3), users: Math.floor(random() * 20) } : {}),
      capacity: planned.capacity,
      endpoint: `https://${planned.id}.nodes.meridian.example:8443`,
      health,
      healthReason: health === "down" ? "heartbeat timeout" : health === "draining" ? "drain: upgrade" : "hello",
      healthSince: since,
      load: agentLoad(inFlight, planned.capacity),
      inFlight,
      free: planned.capacity - inFlight,
      connectedAt: random() < 0.9 ? since : since - Math.floor(random() * 86_400_000),
      seq,
    };
  });
  return { records, hubSeq, gone: [] };
}

/** One change at a hub: mostly a load step, sometimes a health flip, a leave or a return. */
function nextChange(fleet: Fleet, byId: Map<string, NodeRecord>, live: string[], random: () => number, now: number): NodeUpdate {
  const roll = random();
  const seqOf = (region: string) => {
    const seq = fleet.hubSeq.get(region) ?? 0;
    fleet.hubSeq.set(region, seq + 1);
    return seq;
  };
  if (roll < 0.01 && fleet.gone.length > 0) {
    const back = fleet.gone.splice(Math.floor(random() * fleet.gone.length), 1)[0] as NodeRecord;
    const record: NodeRecord = { ...back, health: "healthy", healthReason: "hello", healthSince: now, connectedAt: now, returnedAt: now, inFlight: 0, free: back.capacity, load: 0, seq: seqOf(back.region) };
    byId.set(record.id, record);
    live.push(record.id);
    return record;
  }
  const at = Math.floor(random() * live.length);
  const id = live[at] as string;
  const node = byId.get(id) as NodeRecord;
  if (roll < 0.02) {
    live[at] = live[live.length - 1] as string;
    live.pop();
    byId.delete(id);
    fleet.gone.push(node);
    return { id, region: node.region, gone: true, seq: seqOf(node.region) };
  }
  if (roll < 0.1) {
    const health = node.health === "healthy" ? (random() < 0.5 ? "suspect" : "down") : "healthy";
    const record: NodeRecord = { ...node, health, healthReason: health === "healthy" ? "recovered" : health === "suspect" ? "heartbeat late" : "heartbeat timeout", healthSince: now, seq: seqOf(node.region) };
    byId.set(id, record);
    return record;
  }
  const inFlight = Math.floor(random() * (node.capacity + 1));
  const record: NodeRecord = { ...node, inFlight, free: node.capacity - inFlight, load: agentLoad(inFlight, node.capacity), seq: seqOf(node.region) };
  byId.set(id, record);
  return record;
}

// ---- the simulated tree -----------------------------------------------------------------

/** A binary min-heap of timed events. */
class Events {
  private times: number[] = [];
  private actions: (() => void)[] = [];
  push(at: number, action: () => void): void {
    const times = this.times;
    const actions = this.actions;
    let i = times.length;
    times.push(at);
    actions.push(action);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((times[parent] as number) <= at) break;
      times[i] = times[parent] as number;
      actions[i] = actions[parent] as () => void;
      i = parent;
    }
    times[i] = at;
    actions[i] = action;
  }
  /** Runs events in time order until `until`; returns the time reached. */
  run(until: number, clock: { now: number }): void {
    const times = this.times;
    const actions = this.actions;
    while (times.length > 0 && (times[0] as number) <= until) {
      clock.now = times[0] as number;
      const action = actions[0] as () => void;
      const lastTime = times.pop() as number;
      const lastAction = actions.pop() as () => void;
      const n = times.length;
      if (n > 0) {
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= n) break;
          const r = l + 1;
          const c = r < n && (times[r] as number) < (times[l] as number) ? r : l;
          if ((times[c] as number) >= lastTime) break;
          times[i] = times[c] as number;
          actions[i] = actions[c] as () => void;
          i = c;
        }
        times[i] = lastTime;
        actions[i] = lastAction;
      }
      action();
    }
    clock.now = until;
  }
}

interface SimResult {
  isolates: number;
  primaryReadRps: number;
  primaryHubWritesPerS: number;
  replicaRpsMax: number;
  replicaRpsMean: number;
  coloFetchesPerS: number;
  freshness: ReturnType<typeof summarize>;
  deltaBytesPerRefresh: number;
  frameBytes: number;
  isolateRefreshesPerS: number;
}

function simulate(fleet: Fleet, isolatesPerColo: number, seconds: number, warmSeconds: number, seed: number): SimResult {
  const random = seededRandom(seed);
  const clock = { now: 0 };
  const events = new Events();
  const byId = new Map(fleet.records.map((r) => [r.id, r]));
  const live = fleet.records.map((r) => r.id);
  const primary = new FleetLog("epoch-1");
  primary.applyUpdates(fleet.records);
  primary.setDocuments(1, 1);
  const startVersion = primary.version;
  const warm = warmSeconds * 1000;
  const end = (warmSeconds + seconds) * 1000;

  // Change time (at the hub) of each primary version, to measure freshness.
  let changeTimes = new Float64Array(1 << 16);
  const recordChange = (version: number, at: number) => {
    const k = version - startVersion;
    if (k >= changeTimes.length) {
      const next = new Float64Array(changeTimes.length * 2);
      next.set(changeTimes);
      changeTimes = next;
    }
    changeTimes[k] = at;
  };

  // Hubs: a change waits for the hub's push (batched), then travels to the primary.
  let hubWrites = 0;
  const pending = new Map<string, Map<string, { update: NodeUpdate; at: number }>>();
  const changeRate = NODES * CHANGE_SHARE_PER_S;
  const scheduleChange = (at: number) =>
    events.push(at, () => {
      const update = nextChange(fleet, byId, live, random, NOW0 + clock.now);
      let queue = pending.get(update.region);
      if (queue === undefined) {
        const fresh = new Map<string, { update: NodeUpdate; at: number }>();
        pending.set(update.region, (queue = fresh));
        events.push(clock.now + HUB_PUSH_DELAY_MS, () => {
          pending.delete(update.region);
          const batch = [...fresh.values()];
          events.push(clock.now + latency(random, 50, 150), () => {
            hubWrites += clock.now >= warm ? 1 : 0;
            const before = primary.version;
            primary.applyUpdates(batch.map((b) => b.update));
            // Every update of a hub batch is newer than what the primary holds (hub seqs rise).
            if (primary.version - before === batch.length) batch.forEach((b, i) => recordChange(before + 1 + i, b.at));
          });
        });
      }
      // A later change of the same node supersedes the queued one; the older change time is kept.
      const earlier = queue.get(update.id);
      queue.set(update.id, { update, at: earlier?.at ?? clock.now });
      scheduleChange(clock.now - Math.log(1 - random()) * (1000 / changeRate));
    });
  scheduleChange(0);

  // Replicas, fed by the primary's stream (an ordered channel: frames arrive in order).
  let primaryReads = 0;
  let frameBytes = 0;
  let frames = 0;
  const replicas = new Map(REPLICAS.map((name) => [name, { log: new FleetLog("none"), sentVersion: 0, sentEpoch: null as string | null, lastSentAt: -Infinity, deliveredAt: 0, requests: 0 }]));
  for (const replica of replicas.values()) {
    replica.log.applyAnswer(primary.since(null, 0));
    replica.sentVersion = replica.log.version;
    replica.sentEpoch = replica.log.epoch;
    const phase = random() * FEED_TIMING.streamMs;
    const tick = () => {
      if (streamFrameDue(replica.lastSentAt, clock.now, replica.sentVersion, primary.version)) {
        const frame = primary.since(replica.sentEpoch, replica.sentVersion);
        if (clock.now >= warm) {
          primaryReads++;
          if (frames++ % 4 === 0) frameBytes += encodeFleetAnswer(frame).length * 4;
        }
        replica.sentVersion = frame.version;
        replica.sentEpoch = frame.epoch;
        replica.lastSentAt = clock.now;
        replica.deliveredAt = Math.max(replica.deliveredAt, clock.now + latency(random, 50, 150));
        events.push(replica.deliveredAt, () => replica.log.applyAnswer(frame));
      }
      events.push(clock.now + FEED_TIMING.streamMs, tick);
    };
    events.push(phase, tick);
  }

  // Colos and their isolates.
  let coloFetches = 0;
  let refreshes = 0;
  let sampledBytes = 0;
  let sampledAnswers = 0;
  const freshness: number[] = [];
  const SAMPLE_EVERY = 8;
  for (let c = 0; c < COLOS; c++) {
    const base = REGIONS[Math.floor(random() * REGIONS.length)] ?? REGIONS[0];
    if (base === undefined) throw new Error("empty region catalog");
    const lat = Math.max(-80, Math.min(80, base.lat + (random() - 0.5) * 4));
    const lon = base.lon + (random() - 0.5) * 4;
    const replica = replicas.get(replicaFor(lat, lon));
    if (replica === undefined) throw new Error("no replica for a colo");
    const cache = new Map<string, ColoEntry>();
    for (let k = 0; k < isolatesPerColo; k++) {
      const copy = { loaded: true, fetchedAt: -random() * FEED_TIMING.isolateRefreshMs, refreshing: false, epoch: primary.epoch as string | null, version: startVersion };
      const applied = (answer: FleetAnswer) => {
        const from = copy.version;
        copy.fetchedAt = clock.now;
        copy.refreshing = false;
        if (answer.version > copy.version || answer.epoch !== copy.epoch) {
          copy.version = answer.version;
          copy.epoch = answer.epoch;
        }
        if (clock.now >= warm) {
          refreshes++;
          const first = Math.ceil((from + 1 - startVersion) / SAMPLE_EVERY) * SAMPLE_EVERY;
          for (let v = first; v <= copy.version - startVersion; v += SAMPLE_EVERY) {
            const at = changeTimes[v] ?? 0;
            if (at >= warm - 1000) freshness.push(clock.now - at);
          }
        }
        nextRequest();
      };
      /** Reads the colo's head (a local read, about a millisecond); true when it served. */
      const fromColo = (): boolean => {
        const head = cache.get(COLO_HEAD_KEY);
        if (head === undefined || !coloEntryServes(head, copy, clock.now)) return false;
        events.push(clock.now + 1, () => applied(head.answer));
        return true;
      };
      const fetchFromReplica = () => {
        const rtt = latency(random, 10, 80);
        const base = copy.version;
        events.push(clock.now + rtt / 2, () => {
          const answer = replica.log.since(copy.epoch, base);
          if (clock.now >= warm) {
            replica.requests++;
            coloFetches++;
            if (coloFetches % 8 === 0) {
              sampledBytes += encodeFleetAnswer(answer).length;
              sampledAnswers++;
            }
          }
          events.push(clock.now + rtt / 2, () => {
            const entry: ColoEntry = { answer, base: answer.kind === "full" ? -1 : base, storedAt: clock.now };
            if (coloEntryReplaces(cache.get(COLO_HEAD_KEY), entry)) cache.set(COLO_HEAD_KEY, entry);
            applied(answer);
          });
        });
      };
      const refresh = () => {
        copy.refreshing = true;
        if (fromColo()) return;
        // Stale head: lease it, so the colo's other isolates keep it while this one fetches.
        const head = cache.get(COLO_HEAD_KEY);
        if (head !== undefined) cache.set(COLO_HEAD_KEY, coloLease(head, clock.now));
        fetchFromReplica();
      };
      // The first request after the copy is due for a refresh (requests arrive as a Poisson stream).
      const nextRequest = () => {
        const due = copy.fetchedAt + FEED_TIMING.isolateRefreshMs + 1e-6;
        const at = Math.max(clock.now, due) - Math.log(1 - random()) * (1000 / ISOLATE_REQUESTS_PER_S);
        events.push(at, () => {
          const action = refreshAction(copy, clock.now);
          if (action === "serve") nextRequest();
          else refresh();
        });
      };
      nextRequest();
    }
  }

  events.run(end, clock);
  const replicaRps = [...replicas.values()].map((r) => r.requests / seconds);
  return {
    isolates: COLOS * isolatesPerColo,
    primaryReadRps: primaryReads / seconds,
    primaryHubWritesPerS: hubWrites / seconds,
    replicaRpsMax: Math.max(...replicaRps),
    replicaRpsMean: replicaRps.reduce((a, b) => a + b, 0) / replicaRps.length,
    coloFetchesPerS: coloFetches / seconds,
    freshness: summarize(freshness),
    deltaBytesPerRefresh: sampledAnswers === 0 ? Number.NaN : sampledBytes / sampledAnswers,
    frameBytes: frames === 0 ? Number.NaN : frameBytes / frames,
    isolateRefreshesPerS: refreshes / seconds,
  };
}

// ---- index update and routing after updates, on real CPU time ----------------------------

function timeIndexUpdates(fleet: Fleet, batches: number, random: () => number): { usPer1000: ReturnType<typeof summarize>; index: FleetIndex; records: NodeRecord[] } {
  const byId = new Map(fleet.records.map((r) => [r.id, r]));
  const live = fleet.records.map((r) => r.id);
  const index = new FleetIndex(fleet.records);
  index.apply([]); // the id map is built once per full snapshot, not per delta
  const times: number[] = [];
  for (let b = 0; b < batches; b++) {
    const batch: NodeUpdate[] = [];
    for (let i = 0; i < 1000; i++) batch.push(nextChange(fleet, byId, live, random, NOW0 + b * 1000));
    const t0 = process.hrtime.bigint();
    index.apply(batch);
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return { usPer1000: summarize(times), index, records: [...byId.values()] };
}

function routingP50(index: FleetIndex, queries: readonly Query[], decide: (index: FleetIndex, q: Query) => number, budgetMs: number): number {
  const samples: number[] = [];
  let sink = 0;
  for (let i = 0; i < 2000; i++) sink ^= decide(index, queries[i % queries.length] as Query);
  const deadline = performance.now() + budgetMs;
  for (let i = 0; performance.now() < deadline || samples.length < 500; i++) {
    const t0 = process.hrtime.bigint();
    sink ^= decide(index, queries[i % queries.length] as Query);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  if (sink === 0.5) console.log(sink);
  return summarize(samples).p50;
}

export async function runScaleBench(options: { smoke: boolean }): Promise<Record<string, number>> {
  const { smoke } = options;
  const random = seededRandom(0x5ca1e);
  const fleet = makeFleet(random);

  // Snapshot size: the full fleet as the tree sends it (sorted by id), and as JSON.
  const full = encodeFleetAnswer({ kind: "full", epoch: "epoch-1", version: fleet.records.length, policyVersion: 1, carriersVersion: 1, nodes: sortedById(fleet.records) });
  const bytesPerNode = full.length / fleet.records.length;
  const jsonPerNode = Buffer.byteLength(JSON.stringify(fleet.records)) / fleet.records.length;

  // Index update in place, then routing on the updated index, checked against a rebuild.
  const { policy, queries, decideIndexed } = benchFixtures();
  const updated = timeIndexUpdates(fleet, smoke ? 10 : 60, random);
  const rebuilt = new FleetIndex(updated.records);
  for (const q of queries.slice(0, smoke ? 100 : 1000)) {
    const a = decideIndexed(updated.index, policy, q).candidates.map((c) => `${c.node.id}@${c.score}`);
    const b = decideIndexed(rebuilt, policy, q).candidates.map((c) => `${c.node.id}@${c.score}`);
    if (a.join() !== b.join()) throw new Error(`updated and rebuilt indexes disagree for ${q.label}: [${a.join(", ")}] vs [${b.join(", ")}]`);
  }
  const decide = (index: FleetIndex, q: Query) => decideIndexed(index, policy, q).candidates.length;
  const routingAfter = routingP50(updated.index, queries, decide, smoke ? 300 : 3000);
  const routingRebuilt = routingP50(rebuilt, queries, decide, smoke ? 300 : 3000);

  // The tree, at 1,000+ isolates and at 10,000+.
  const seconds = smoke ? 4 : 20;
  const runs = (smoke ? [4] : [4, 31]).map((k) => simulate(makeFleet(seededRandom(0x5ca1e)), k, seconds, 2, 0xf00d + k));
  const first = runs[0];
  if (first === undefined) throw new Error("no simulation run");

  printTable(
    `Fleet tree, simulated ${seconds} s after 2 s of warm-up (100k nodes, ${NODES * CHANGE_SHARE_PER_S} changes/s, ${REGIONS.length} hubs, ${COLOS} colos, ${REPLICAS.length} replicas)`,
    runs.map((r) => ({
      isolates: r.isolates,
      "primary reads/s": r.primaryReadRps,
      "hub writes/s": r.primaryHubWritesPerS,
      "replica req/s max": r.replicaRpsMax,
      "replica req/s mean": r.replicaRpsMean,
      "colo fetches/s": r.coloFetchesPerS,
      "isolate refreshes/s": r.isolateRefreshesPerS,
      "fresh p50 ms": r.freshness.p50,
      "fresh p99 ms": r.freshness.p99,
      "fresh max ms": r.freshness.max,
      "B/refresh fetch": r.deltaBytesPerRefresh,
      "B/stream frame": r.frameBytes,
    })),
  );
  console.log(`\nCPU figures below were taken at load average ${os.loadavg()[0]?.toFixed(1)} on ${os.cpus().length} cores.`);
  printTable("Snapshot and index", [
    { what: "full snapshot, B/node (binary)", value: bytesPerNode, goal: "<= 40" },
    { what: "full snapshot, B/node (JSON)", value: jsonPerNode, goal: "" },
    { what: "index update, µs per 1,000 changes at 100k (p50)", value: updated.usPer1000.p50, goal: "<= 1000" },
    { what: "index update, µs per 1,000 changes at 100k (p99)", value: updated.usPer1000.p99, goal: "" },
    { what: "routing p50 µs at 100k, updated in place", value: routingAfter, goal: "= rebuilt" },
    { what: "routing p50 µs at 100k, rebuilt", value: routingRebuilt, goal: "" },
  ]);
  const result: Record<string, number> = {
    scale_primary_rps_1000_isolates: first.primaryReadRps,
    scale_primary_hub_writes_per_s: first.primaryHubWritesPerS,
    scale_replica_rps: first.replicaRpsMax,
    scale_freshness_ms_p50: first.freshness.p50,
    scale_freshness_ms_p99: first.freshness.p99,
    snapshot_bytes_per_node: bytesPerNode,
    delta_bytes_per_refresh: first.deltaBytesPerRefresh,
    index_update_us_per_1000_changes_100k: updated.usPer1000.p50,
    routing_us_p50_100k_after_updates: routingAfter,
    routing_us_p50_100k_rebuilt: routingRebuilt,
  };
  const big = runs[1];
  if (big !== undefined) {
    result.scale_primary_rps_10000_isolates = big.primaryReadRps;
    result.scale_replica_rps_10000_isolates = big.replicaRpsMax;
    result.scale_freshness_ms_p99_10000_isolates = big.freshness.p99;
  }
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = performance.now();
  const result = await runScaleBench({ smoke: process.argv.includes("--smoke") });
  printTable(
    "Figures",
    Object.entries(result).map(([key, value]) => ({ key, value })),
  );
  console.log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
