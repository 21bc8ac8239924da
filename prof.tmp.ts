import { FleetIndex } from "@meridian/routing";
import { benchFixtures } from "./bench/routing";
const { makeFleet } = benchFixtures();
const records = makeFleet(100_000, 7);
const index = new FleetIndex(records);
index.apply([]);
const times: number[] = [];
for (let round = 0; round < 200; round++) {
  const batch = [];
  for (let i = 0; i < 1000; i++) { const r = records[(i * 97 + round * 13) % records.length]!; batch.push({ ...r, inFlight: i % 5, seq: r.seq + round + 1 }); }
  const t0 = performance.now(); index.apply(batch); times.push((performance.now() - t0) * 1000);
}
times.sort((a, b) => a - b);
console.log("p50 µs", times[100]!.toFixed(0), "min", times[0]!.toFixed(0));
