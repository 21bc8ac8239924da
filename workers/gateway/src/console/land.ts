/**
 * The world's land as one SVG path in the console map's equirectangular frame
 * (x = lon + 180, y = 90 - lat, a 360 x 180 box), from Natural Earth's 1:110m land
 * (world-atlas, TopoJSON). Decoded once per isolate; the browser caches the answer.
 */
import land from "world-atlas/land-110m.json";

type Position = [number, number];

/** The TopoJSON fields this reads, checked rather than trusted. */
function topology(value: unknown): { arcs: Position[][]; scale: Position; translate: Position; polygons: number[][][] } {
  const t = value as { arcs?: unknown; transform?: { scale?: unknown; translate?: unknown }; objects?: { land?: { geometries?: { type?: unknown; arcs?: unknown }[] } } };
  const pair = (v: unknown): Position => {
    if (!Array.isArray(v) || typeof v[0] !== "number" || typeof v[1] !== "number") throw new Error("land: bad pair");
    return [v[0], v[1]];
  };
  if (!Array.isArray(t.arcs)) throw new Error("land: no arcs");
  const arcs = t.arcs.map((arc: unknown) => (Array.isArray(arc) ? arc.map(pair) : []));
  const polygons: number[][][] = [];
  for (const g of t.objects?.land?.geometries ?? []) {
    const rings = g.type === "Polygon" ? [g.arcs] : g.type === "MultiPolygon" && Array.isArray(g.arcs) ? g.arcs : [];
    for (const polygon of rings) {
      if (!Array.isArray(polygon)) continue;
      polygons.push(polygon.map((ring: unknown) => (Array.isArray(ring) ? ring.filter((i): i is number => typeof i === "number") : [])));
    }
  }
  return { arcs, scale: pair(t.transform?.scale), translate: pair(t.transform?.translate), polygons };
}

let cached: string | null = null;

export function landPath(): string {
  if (cached !== null) return cached;
  const { arcs, scale, translate, polygons } = topology(land);
  // Quantized, delta-encoded arcs to absolute longitude/latitude.
  const decoded = arcs.map((arc) => {
    let x = 0;
    let y = 0;
    return arc.map(([dx, dy]): Position => {
      x += dx;
      y += dy;
      return [x * scale[0] + translate[0], y * scale[1] + translate[1]];
    });
  });
  const parts: string[] = [];
  for (const polygon of polygons) {
    for (const ring of polygon) {
      const points: Position[] = [];
      for (const index of ring) {
        const arc = index >= 0 ? decoded[index] : decoded[~index]?.slice().reverse();
        if (arc !== undefined) points.push(...(points.length > 0 ? arc.slice(1) : arc));
      }
      let path = "";
      let previousLon: number | null = null;
      for (const [lon, lat] of points) {
        // A jump across the antimeridian starts a new subpath instead of a line across the map.
        const move = previousLon === null || Math.abs(lon - previousLon) > 180;
        path += `${move ? "M" : "L"}${(lon + 180).toFixed(1)} ${(90 - lat).toFixed(1)}`;
        previousLon = lon;
      }
      if (path !== "") parts.push(`${path}Z`);
    }
  }
  cached = parts.join("");
  return cached;
}
