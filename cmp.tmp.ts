import { benchFixtures } from "./bench/routing";
import { FleetIndex } from "@meridian/routing";
import { FleetIndex as OldIndex } from "../main/packages/routing/src/fleet-index";
const { makeFleet } = benchFixtures();
const records = makeFleet(100_000, 0xf1ee7 + 100_000);
for (let k = 0; k < 6; k++) {
  let t0 = performance.now(); new OldIndex(records); const a = performance.now() - t0;
  t0 = performance.now(); new FleetIndex(records); const b = performance.now() - t0;
  const m = new Map<string, number>(); t0 = performance.now(); records.forEach((r, i) => m.set(r.id, i)); const c = performance.now() - t0;
  console.log("old", a.toFixed(1), "new", b.toFixed(1), "map", c.toFixed(1));
}
