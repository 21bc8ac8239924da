// @ts-check
/**
 * The world map: Natural Earth land in an equirectangular frame (x = lon + 180, y = 90 - lat),
 * one dot per catalog region. Drawn once; dots and overlays are updated in place.
 */
import { api, s, str } from "./lib.js";

/** @typedef {{ id: string, city: string, country: string, subdivision?: string, lat: number, lon: number, continent: string }} Region */
/** @typedef {{ nodes: number, healthy: number, unhealthy: number }} RegionStats */

/** @type {Promise<string> | null} */
let land = null;
function landPath() {
  land ??= api("/console/api/land").then((r) => str(r.body.path)).catch(() => "");
  return land;
}

/** @param {number} lon @param {number} lat @returns {[number, number]} */
export const project = (lon, lat) => [lon + 180, 90 - lat];

/**
 * @param {Region[]} regions
 * @param {{ label: string, onRegion?: (id: string) => void }} options
 */
export function worldMap(regions, options) {
  const landShape = s("path", { class: "land", d: "" });
  const graticule = s("g", { class: "graticule" });
  for (let lon = -150; lon <= 150; lon += 30) graticule.appendChild(s("line", { x1: lon + 180, y1: 0, x2: lon + 180, y2: 180 }));
  for (let lat = -60; lat <= 60; lat += 30) graticule.appendChild(s("line", { x1: 0, y1: 90 - lat, x2: 360, y2: 90 - lat }));
  const dots = s("g", { class: "dots" });
  const overlay = s("g", { class: "overlay" });
  const title = s("title", {}, options.label);
  const svg = s("svg", { viewBox: "0 0 360 180", class: "world-map", role: "img", "aria-label": options.label }, title, s("rect", { class: "sea", width: 360, height: 180 }), landShape, graticule, dots, overlay);
  void landPath().then((d) => landShape.setAttribute("d", d));
  /** @type {Map<string, SVGElement>} */
  const dotOf = new Map();
  for (const region of regions) {
    const [x, y] = project(region.lon, region.lat);
    const dot = s("circle", { cx: x.toFixed(2), cy: y.toFixed(2), r: 1, class: "region-dot empty", "data-region": region.id, "data-nodes": 0 }, s("title", {}, `${region.city} (${region.id})`));
    if (options.onRegion) {
      const open = options.onRegion;
      dot.addEventListener("click", () => open(region.id));
    }
    dotOf.set(region.id, dot);
    dots.appendChild(dot);
  }

  return {
    svg,
    /**
     * Sizes each dot by its node count (area proportional) and colours it by health.
     * @param {Map<string, RegionStats>} stats @param {string | null} selected
     */
    update(stats, selected) {
      for (const region of regions) {
        const dot = dotOf.get(region.id);
        if (!dot) continue;
        const st = stats.get(region.id) ?? { nodes: 0, healthy: 0, unhealthy: 0 };
        const health = st.nodes === 0 ? "empty" : st.unhealthy === 0 ? "ok" : st.healthy === 0 ? "down" : "degraded";
        dot.setAttribute("r", (st.nodes === 0 ? 0.8 : 1.2 + Math.sqrt(st.nodes) * 0.9).toFixed(2));
        dot.setAttribute("class", `region-dot ${health}${selected === region.id ? " selected" : ""}`);
        dot.setAttribute("data-nodes", String(st.nodes));
        const t = dot.firstChild;
        if (t) t.textContent = `${region.city} (${region.id}): ${st.nodes} node(s), ${st.healthy} healthy`;
      }
    },
    /**
     * Draws the client and lines to the chosen node (solid) and fallbacks (dashed).
     * @param {{ lat: number, lon: number } | null} client
     * @param {{ region: string, role: "primary" | "fallback" | "excluded" }[]} marks
     */
    route(client, marks) {
      overlay.replaceChildren();
      const byId = new Map(regions.map((r) => [r.id, r]));
      const [cx, cy] = client ? project(client.lon, client.lat) : [0, 0];
      for (const mark of [...marks].reverse()) {
        const region = byId.get(mark.region);
        if (!region) continue;
        const [x, y] = project(region.lon, region.lat);
        if (client && mark.role !== "excluded") overlay.appendChild(s("line", { x1: cx, y1: cy, x2: x, y2: y, class: `route-line ${mark.role}` }));
        overlay.appendChild(s("circle", { cx: x, cy: y, r: mark.role === "primary" ? 3 : 2.2, class: `route-node ${mark.role}`, "data-route-region": mark.region, "data-route-role": mark.role }));
      }
      if (client) overlay.appendChild(s("rect", { x: cx - 2, y: cy - 2, width: 4, height: 4, class: "route-client" }));
    },
  };
}
