// @ts-check
/** Fleet: the map of regions (live), totals, filters, and a region's node table. */
import { worldMap } from "./map.js";
import { ago, api, h, num, objects, replace, str, table } from "./lib.js";

/** @typedef {Record<string, unknown>} FleetNode */

const POLL_MS = 2000;
const STATES = ["healthy", "suspect", "ejected", "draining", "down"];

/** @param {import("./app.js").PageContext} ctx */
export async function fleetPage(ctx) {
  const { regions } = ctx.catalog;
  /** @type {string | null} */
  let selected = null;
  /** @type {FleetNode[]} */
  let nodes = [];
  const map = worldMap(regions, { label: "World map of the catalog's regions; dot size is the node count, colour the health. The region table below lists the same.", onRegion: (id) => select(id) });

  /** @param {string} id @param {string} label @param {string[]} values */
  const filter = (id, label, values) => {
    const el = h("select", { id, onchange: () => render() }, h("option", { value: "" }, "any"), values.map((v) => h("option", { value: v }, v)));
    return { el, field: h("div", { class: "field" }, h("label", { for: id }, label), el) };
  };
  const { el: kindFilter, field: kindField } = filter("filter-kind", "Kind", ctx.catalog.nodeKinds);
  const { el: stateFilter, field: stateField } = filter("filter-state", "State", STATES);
  const { el: gpuFilter, field: gpuField } = filter("filter-gpu", "GPU class", ctx.catalog.gpuClasses);
  const totals = h("div", { class: "totals", "aria-live": "polite", id: "fleet-totals" });
  const updated = h("p", { class: "help", id: "fleet-updated" });
  const regionList = h("div", { id: "region-list" });
  const detail = h("section", { id: "region-detail", "aria-labelledby": "region-title" });

  replace(
    ctx.main,
    h("h1", {}, "Fleet"),
    h("div", { class: "filters", role: "group", "aria-label": "Filters" }, kindField, stateField, gpuField),
    totals,
    h("div", { class: "map-wrap" }, map.svg, h("ul", { class: "legend", "aria-label": "Legend" }, h("li", { class: "ok" }, "all healthy"), h("li", { class: "degraded" }, "some unhealthy"), h("li", { class: "down" }, "none healthy"), h("li", { class: "empty" }, "no nodes"))),
    updated,
    detail,
    h("h2", {}, "Regions"),
    regionList,
  );

  /** @param {FleetNode} n */
  const matches = (n) => {
    const gpu = n.gpu && typeof n.gpu === "object" && "class" in n.gpu ? str(n.gpu.class) : "";
    return (!kindFilter.value || n.kind === kindFilter.value) && (!stateFilter.value || n.state === stateFilter.value) && (!gpuFilter.value || gpu === gpuFilter.value);
  };

  /** @param {string} id */
  function select(id) {
    selected = id;
    render();
    document.getElementById("region-title")?.focus();
  }

  function render() {
    const shown = nodes.filter(matches);
    /** @type {Map<string, { nodes: number, healthy: number, unhealthy: number }>} */
    const stats = new Map();
    for (const n of shown) {
      const st = stats.get(str(n.region)) ?? { nodes: 0, healthy: 0, unhealthy: 0 };
      st.nodes++;
      if (n.state === "healthy" || n.state === "suspect") st.healthy++;
      else st.unhealthy++;
      stats.set(str(n.region), st);
    }
    map.update(stats, selected);
    const count = (/** @type {string} */ state) => shown.filter((n) => n.state === state).length;
    replace(
      totals,
      h("dl", {}, [
        ["nodes", shown.length],
        ["regions", stats.size],
        ...STATES.map((st) => [st, count(st)]),
        ...ctx.catalog.nodeKinds.map((k) => [k, shown.filter((n) => n.kind === k).length]),
      ].map(([k, v]) => h("div", {}, h("dt", {}, String(k)), h("dd", { "data-total": String(k) }, String(v))))),
    );
    const rows = regions
      .filter((r) => stats.has(r.id))
      .map((r) => {
        const st = stats.get(r.id) ?? { nodes: 0, healthy: 0, unhealthy: 0 };
        return [h("button", { type: "button", class: "link", onclick: () => select(r.id), "data-open-region": r.id }, `${r.city} (${r.id})`), r.country, st.nodes, st.healthy, st.unhealthy];
      });
    replace(regionList, table("Regions with nodes", ["Region", "Country", "Nodes", "Routable", "Not routable"], rows));
    if (selected === null) {
      replace(detail, h("h2", { id: "region-title", tabindex: -1 }, "No region open"), h("p", { class: "help" }, "Choose a region on the map or in the table below."));
      return;
    }
    const region = regions.find((r) => r.id === selected);
    const inRegion = shown.filter((n) => n.region === selected);
    replace(
      detail,
      h("h2", { id: "region-title", tabindex: -1 }, `Nodes in ${region ? `${region.city} (${region.id}, ${region.country})` : selected}: ${inRegion.length}`),
      inRegion.length === 0 ? h("p", {}, "No node here matches the filters.") : table(`Nodes in ${selected}`, ["Node", "Kind", "GPU class", "Load", "State", "Reason", "Since", "Slow start", "Ejected", "Geo flag"], inRegion.map(nodeRow), { id: "node-table" }),
    );
  }

  /** @param {FleetNode} n */
  function nodeRow(n) {
    const gpu = n.gpu && typeof n.gpu === "object" && "class" in n.gpu ? `${str(n.gpu.class)}${"count" in n.gpu ? ` ×${str(n.gpu.count)}` : ""}` : "";
    const slow = n.slowStart && typeof n.slowStart === "object" && "penaltyMs" in n.slowStart ? `+${str(n.slowStart.penaltyMs)} ms` : "";
    const ejected = n.ejected && typeof n.ejected === "object" && "until" in n.ejected ? `until ${new Date(str(n.ejected.until)).toLocaleTimeString()}` : "";
    const geo = n.geoFlag && typeof n.geoFlag === "object" && "colo" in n.geoFlag && "km" in n.geoFlag ? `${str(n.geoFlag.colo)}, ${str(n.geoFlag.km)} km` : "";
    return [h("span", { "data-node": str(n.id) }, str(n.id)), str(n.kind), gpu, `${Math.round(num(n.load) * 100)} %`, h("span", { class: `state ${str(n.state)}` }, str(n.state)), str(n.stateReason), ago(n.stateSince), slow, ejected, geo];
  }

  let timer = 0;
  let stopped = false;
  async function poll() {
    try {
      const res = await api("/admin/fleet");
      nodes = objects(res.body.nodes);
      updated.textContent = `Fleet version ${str(res.body.version)}, ${nodes.length} nodes; refreshed every ${POLL_MS / 1000} s, last at ${new Date().toLocaleTimeString()}.`;
      render();
    } catch (e) {
      updated.textContent = `Refresh failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (!stopped) timer = window.setTimeout(() => void poll(), POLL_MS);
  }
  ctx.onLeave(() => {
    stopped = true;
    clearTimeout(timer);
  });
  render();
  await poll();
}
