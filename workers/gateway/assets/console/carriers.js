// @ts-check
/**
 * Carriers: per partner the dial, the boost state of its backbone nodes, the offload share
 * (last 24 h, from the ledger) and the usage CSV; below, the partners document edited like
 * the policy (writes need the admin role, as in the API).
 */
import { documentPage } from "./documents.js";
import { api, h, isObject, num, objects, replace, str, table } from "./lib.js";

/** @param {import("./app.js").PageContext} ctx */
export async function carriersPage(ctx) {
  const [carriers, summary, fleet] = await Promise.all([api("/admin/carriers"), api("/admin/offload/summary"), api("/admin/fleet")]);
  const doc = isObject(carriers.body.document) ? carriers.body.document : {};
  const partners = objects(doc.partners);
  const shares = new Map(objects(summary.body.partners).map((p) => [str(p.partner), p]));
  const backbone = objects(fleet.body.nodes).filter((n) => n.kind === "carrier");
  const now = Date.now();
  const from = new Date(now - 30 * 24 * 3600_000).toISOString().slice(0, 13) + ":00:00Z";
  const to = new Date(now + 3600_000).toISOString().slice(0, 13) + ":00:00Z";
  const percent = (/** @type {unknown} */ share) => (typeof share === "number" ? `${(share * 100).toFixed(1)} %` : "no traffic yet");
  const editorSection = h("section", { id: "carriers-document" });

  const cards = partners.map((p) => {
    const id = str(p.id);
    const rules = isObject(p.offload) ? p.offload : {};
    const dial = isObject(rules.dial) ? rules.dial : {};
    const threshold = num(rules.congestionThreshold);
    const release = threshold - num(rules.hysteresis);
    const share = shares.get(id);
    const nodes = backbone.filter((n) => n.partner === id);
    // The dial's state lives in each isolate; the node's congestion says which side of the band it is on.
    const boost = (/** @type {number} */ c) => (c >= threshold ? "boosting (at or above the threshold)" : c < release ? "base (below the release point)" : "in the hysteresis band (keeps its last state)");
    const csv = `/admin/offload/usage?${new URLSearchParams({ partner: id, from, to, format: "csv" })}`;
    return h(
      "article",
      { class: "card partner", "aria-labelledby": `partner-${id}`, "data-partner": id },
      h("h2", { id: `partner-${id}` }, `${str(p.name)} (${id})`),
      h("dl", { class: "facts" }, [
        ["Dial", `${str(dial.base)} % base, up to ${str(dial.max)} %`],
        ["Congestion threshold", `${str(rules.congestionThreshold)} (release below ${Number.isFinite(release) ? release.toFixed(2) : "?"})`],
        ["Hotspots", `within ${str(rules.maxHotspotKm)} km, tier ${str(rules.minTier)} or better`],
        ["Regions", Array.isArray(p.regions) ? p.regions.map(str).join(", ") : ""],
        ["Offload share, last 24 h", `${percent(share?.offloadShare)} of requests, ${percent(share?.offloadByteShare)} of bytes`],
      ].map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
      nodes.length
        ? table(`Backbone nodes of ${id}`, ["Node", "Region", "State", "Congestion", "Boost"], nodes.map((n) => [str(n.id), str(n.region), str(n.state), num(n.congestion).toFixed(2), boost(num(n.congestion))]))
        : h("p", { class: "help" }, "No backbone node of this partner is connected."),
      h("p", {}, h("a", { href: csv, download: `${id}-usage.csv` }, `Download usage (CSV, last 30 days) for ${id}`)),
    );
  });

  replace(ctx.main, h("h1", {}, "Carriers"), cards.length ? cards : h("p", {}, "No carrier partner is configured yet."), editorSection);
  await documentPage(ctx, { title: "Carrier partners document", name: "carriers", base: "/admin/carriers", auditUrl: "/admin/carriers/audit", schema: "carriers", writeRole: "admin" }, editorSection);
}
