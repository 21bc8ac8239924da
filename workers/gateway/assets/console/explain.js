// @ts-check
/** Route explainer: a client and requirements in, /route's decision out, drawn on the map. */
import { worldMap } from "./map.js";
import { ApiError, api, h, isObject, num, objects, replace, str, table } from "./lib.js";

/** @param {import("./app.js").PageContext} ctx */
export async function explainPage(ctx) {
  const { regions, gpuClasses } = ctx.catalog;
  const map = worldMap(regions, { label: "Map of the route decision: the client (square), the chosen node (large dot, solid line) and the fallbacks (dashed lines)." });
  map.update(new Map(), null);
  const byCity = [...regions].sort((a, b) => a.city.localeCompare(b.city));
  const input = (/** @type {string} */ id, /** @type {string} */ label, /** @type {Record<string, string | number>} */ attrs = {}) => {
    const el = h("input", { id, name: id, ...attrs });
    return { el, field: h("div", { class: "field" }, h("label", { for: id }, label), el) };
  };
  const city = h("select", { id: "explain-city" }, h("option", { value: "" }, "(coordinates below)"), byCity.map((r) => h("option", { value: r.id }, `${r.city}, ${r.country} (${r.id})`)));
  const { el: lat, field: latField } = input("explain-lat", "Latitude", { inputmode: "decimal", required: "" });
  const { el: lon, field: lonField } = input("explain-lon", "Longitude", { inputmode: "decimal", required: "" });
  const { el: country, field: countryField } = input("explain-country", "Country (ISO 3166-1)", { maxlength: 2, autocomplete: "off" });
  const { el: subdivision, field: subdivisionField } = input("explain-subdivision", "Subdivision (ISO 3166-2)", { maxlength: 6, autocomplete: "off" });
  const kind = h("select", { id: "explain-kind" }, h("option", { value: "" }, "any"), ctx.catalog.nodeKinds.map((k) => h("option", { value: k }, k)));
  const gpu = h("select", { id: "explain-gpu" }, h("option", { value: "" }, "any"), gpuClasses.map((g) => h("option", { value: g }, g)));
  const { el: vram, field: vramField } = input("explain-vram", "Minimum VRAM (GB)", { inputmode: "numeric" });
  const { el: residency, field: residencyField } = input("explain-residency", "Residency", { autocomplete: "off" });
  city.addEventListener("change", () => {
    const region = regions.find((r) => r.id === city.value);
    if (!region) return;
    lat.value = String(region.lat);
    lon.value = String(region.lon);
    country.value = region.country;
    subdivision.value = region.subdivision ?? "";
  });
  const result = h("section", { id: "explain-result", "aria-live": "polite", "aria-labelledby": "explain-result-title" });
  const form = h(
    "form",
    { class: "card", "aria-label": "Client and requirements" },
    h("fieldset", {}, h("legend", {}, "Client"), h("div", { class: "field" }, h("label", { for: "explain-city" }, "City from the catalog"), city), latField, lonField, countryField, subdivisionField),
    h("fieldset", {}, h("legend", {}, "Requirements"), h("div", { class: "field" }, h("label", { for: "explain-kind" }, "Node kind"), kind), h("div", { class: "field" }, h("label", { for: "explain-gpu" }, "GPU class"), gpu), vramField, residencyField),
    h("button", { type: "submit" }, "Explain the route"),
  );
  /** Rule id -> its effect and reason, from the live policy (read before the form can be used). @type {Map<string, { effect: string, reason: string }>} */
  const rules = new Map();
  const live = await api("/admin/policy");
  const doc = isObject(live.body.document) ? live.body.document : {};
  for (const rule of objects(doc.rules)) rules.set(str(rule.id), { effect: str(rule.effect), reason: str(rule.reason) });
  replace(ctx.main, h("h1", {}, "Route explainer"), h("div", { class: "split" }, form, h("div", {}, map.svg, result)));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    /** @type {Record<string, string>} */
    const query = { lat: lat.value.trim(), lon: lon.value.trim() };
    if (country.value.trim()) query.country = country.value.trim();
    if (subdivision.value.trim()) query.subdivision = subdivision.value.trim();
    if (kind.value) query.kind = kind.value;
    if (gpu.value) query.gpu = gpu.value;
    if (vram.value.trim()) query.minVram = vram.value.trim();
    if (residency.value.trim()) query.residency = residency.value.trim();
    try {
      const res = await api(`/console/api/route?${new URLSearchParams(query)}`, { allow: [451, 503] });
      show(res.status, res.body);
    } catch (e) {
      replace(result, h("h2", { id: "explain-result-title" }, "No answer"), h("p", { class: "error", role: "alert" }, e instanceof ApiError ? `${e.status} ${e.code}: ${e.message}` : String(e)));
      map.route(null, []);
    }
  });

  /** @param {number} status @param {Record<string, unknown>} body */
  function show(status, body) {
    const node = isObject(body.node) ? body.node : null;
    const fallbacks = objects(body.fallbacks);
    const excluded = objects(body.excluded);
    const error = isObject(body.error) ? body.error : null;
    const client = isObject(body.client) ? body.client : {};
    const clientAt = Number.isFinite(num(client.lat)) ? { lat: num(client.lat), lon: num(client.lon) } : null;
    map.route(clientAt, [...(node ? [{ region: str(node.region), role: /** @type {const} */ ("primary") }] : []), ...fallbacks.map((f) => ({ region: str(f.region), role: /** @type {const} */ ("fallback") }))]);
    /** @type {Map<string, Record<string, unknown>[]>} */
    const groups = new Map();
    for (const x of excluded) {
      const key = x.reason === "policy" ? `policy: ${Array.isArray(x.rules) ? x.rules.map(str).join(", ") : ""}` : str(x.reason);
      groups.set(key, [...(groups.get(key) ?? []), x]);
    }
    const deciding = new Set([...excluded.flatMap((x) => (Array.isArray(x.rules) ? x.rules.map(str) : [])), ...(error && Array.isArray(error.rules) ? error.rules.map(str) : [])]);
    const describe = (/** @type {Record<string, unknown>} */ n) => `${str(n.id)} in ${str(n.region)}, ${str(n.rttMs)} ms estimated, score ${str(n.score)}, load ${Math.round(num(n.load) * 100)} %`;
    replace(
      result,
      h("h2", { id: "explain-result-title" }, node ? "Chosen node" : `No node: ${status}`),
      error ? h("p", { class: "error", "data-route-error": str(error.code) }, `${str(error.code)}: ${str(error.message)}`) : null,
      node ? h("p", { class: "chosen", "data-chosen-node": str(node.id), "data-chosen-region": str(node.region) }, describe(node)) : null,
      h("p", { class: "help" }, `Client ${str(client.lat)}, ${str(client.lon)} ${str(client.country)} ${str(client.subdivision)} (${str(client.source)}); policy v${str(body.policyVersion)}, fleet of ${str(body.fleetSize)}.`),
      h("h3", {}, `Fallbacks (${fallbacks.length})`),
      fallbacks.length ? h("ol", {}, fallbacks.map((f) => h("li", {}, describe(f)))) : h("p", {}, "None."),
      h("h3", {}, `Deciding policy rules (${deciding.size})`),
      deciding.size
        ? h("ul", { id: "deciding-rules" }, [...deciding].map((id) => h("li", { "data-rule": id }, h("strong", {}, id), `: ${rules.get(id)?.effect ?? "?"}, ${rules.get(id)?.reason ?? "(not in the live policy)"}`)))
        : h("p", {}, "No policy rule refused a node for this client."),
      h("h3", {}, `Excluded nodes (${excluded.length}), by reason`),
      [...groups].sort((a, b) => b[1].length - a[1].length).map(([reason, list]) =>
        h("details", { "data-excluded-reason": reason }, h("summary", {}, `${reason}: ${list.length}`), table(`Excluded: ${reason}`, ["Node", "Region"], list.map((x) => [str(x.id), str(x.region)]))),
      ),
    );
  }
}
