import { GPU_CLASSES, PolicyDocumentSchema, formatIssues, UNKNOWN_COUNTRY, type NodeKind, type GpuClass, type PolicyDocument, type PolicyMatch } from "@meridian/protocol";
import { REGIONS } from "@meridian/regions";
import { CompiledPolicy, FIELD_GROUP_KIND, type ClientContext, type NodeContext } from "./compile";

export interface Finding {
  code: string;
  message: string;
  path?: string;
  rule?: string;
}

export type ValidationResult =
  | { ok: true; document: PolicyDocument; violations: Finding[] }
  | { ok: false; errors: Finding[] };

/** A node class as the impact matrix counts it: a GPU class, "hotspot" or "carrier". */
export type NodeClass = GpuClass | "hotspot" | "carrier";
export const NODE_CLASSES: readonly NodeClass[] = [...GPU_CLASSES, "hotspot", "carrier"];

function nodeOfClass(region: string, nodeClass: NodeClass): NodeContext {
  return nodeClass === "hotspot" || nodeClass === "carrier" ? { region, kind: nodeClass } : { region, kind: "gpu" as NodeKind, gpuClass: nodeClass };
}

/** Every (region, class) a node can be. */
const ALL_NODES: readonly NodeContext[] = REGIONS.flatMap((r) => NODE_CLASSES.map((c) => nodeOfClass(r.id, c)));

/** Client countries worth checking: every catalog and group country, plus "unknown". */
function clientCountries(doc: PolicyDocument): string[] {
  const set = new Set<string>([UNKNOWN_COUNTRY, ...REGIONS.map((r) => r.country)]);
  for (const group of Object.values(doc.groups.countries)) for (const c of group.members) set.add(c);
  return [...set].sort();
}

function listedSubdivisions(doc: PolicyDocument): string[] {
  const set = new Set<string>();
  for (const group of Object.values(doc.groups.subdivisions)) for (const s of group.members) set.add(s);
  for (const r of REGIONS) if (r.subdivision) set.add(r.subdivision);
  return [...set].sort();
}

/** Client contexts for invariants and impact: each country, each listed subdivision. */
export function clientUniverse(doc: PolicyDocument, residencies: readonly (string | undefined)[] = [undefined]): ClientContext[] {
  const out: ClientContext[] = [];
  for (const residency of residencies) {
    const extra = residency === undefined ? {} : { residency };
    for (const country of clientCountries(doc)) out.push({ country, ...extra });
    for (const subdivision of listedSubdivisions(doc)) out.push({ country: subdivision.slice(0, 2), subdivision, ...extra });
  }
  return out;
}

function tenantAndResidencyValues(doc: PolicyDocument): { residencies: (string | undefined)[]; tenants: (string | undefined)[] } {
  const residencies = new Set<string>();
  const tenants = new Set<string>();
  const compiled = new CompiledPolicy(doc, 0);
  for (const rule of compiled.rules) {
    for (const r of rule.match.residency ?? []) residencies.add(r);
    for (const r of rule.except.residency ?? []) residencies.add(r);
    for (const t of rule.match.tenantHq ?? []) tenants.add(t);
  }
  return { residencies: [undefined, ...residencies], tenants: [undefined, ...tenants] };
}

/** Structural checks (hard errors) then invariants (violations: publishable only with force). */
export function validatePolicy(input: unknown): ValidationResult {
  const parsed = PolicyDocumentSchema.safeParse(input);
  if (!parsed.success) {
    return { ok: false, errors: formatIssues(parsed.error).map((issue) => ({ code: "schema", ...issue })) };
  }
  const doc = parsed.data;
  const errors: Finding[] = [];
  const seen = new Set<string>();
  doc.rules.forEach((rule, index) => {
    if (seen.has(rule.id)) errors.push({ code: "duplicate-rule-id", message: `rule id ${rule.id} is used twice`, path: `rules.${index}.id`, rule: rule.id });
    seen.add(rule.id);
    for (const [part, match] of [["match", rule.match], ["except", rule.except]] as const) {
      if (match === undefined) continue;
      for (const field of Object.keys(match) as (keyof PolicyMatch)[]) {
        for (const value of match[field] ?? []) {
          if (!value.startsWith("@")) continue;
          const kind = FIELD_GROUP_KIND[field];
          if (kind === null || doc.groups[kind][value.slice(1)] === undefined) {
            errors.push({ code: "unknown-group", message: `${field} refers to ${value}, which is not a ${kind ?? "known"} group`, path: `rules.${index}.${part}.${field}`, rule: rule.id });
          }
        }
      }
    }
    if (Object.keys(rule.match).length === 0 && rule.effect === "allow") {
      errors.push({ code: "empty-allow", message: `rule ${rule.id} allows everything; set defaultEffect instead`, path: `rules.${index}.match`, rule: rule.id });
    }
  });
  for (const [kind, refs] of [["countries", doc.embargo.countries], ["subdivisions", doc.embargo.subdivisions]] as const) {
    for (const ref of refs) {
      if (doc.groups[kind][ref.slice(1)] === undefined) errors.push({ code: "unknown-group", message: `embargo.${kind} refers to unknown group ${ref}`, path: `embargo.${kind}` });
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, document: doc, violations: [...embargoViolations(doc), ...meaninglessRules(doc)] };
}

/** Every embargoed place must be denied every node, as client and as node location. */
function embargoViolations(doc: PolicyDocument): Finding[] {
  const policy = new CompiledPolicy(doc, 0);
  const out: Finding[] = [];
  const places: ClientContext[] = [
    ...doc.embargo.countries.flatMap((ref) => (doc.groups.countries[ref.slice(1)]?.members ?? []).map((country) => ({ country }))),
    ...doc.embargo.subdivisions.flatMap((ref) => (doc.groups.subdivisions[ref.slice(1)]?.members ?? []).map((s) => ({ country: s.slice(0, 2), subdivision: s }))),
  ];
  for (const place of places) {
    const judge = policy.forClient(place);
    const open = ALL_NODES.find((node) => judge(node).allowed);
    const where = place.subdivision ?? place.country ?? "?";
    if (open !== undefined) {
      out.push({ code: "embargo-open", message: `clients in embargoed ${where} can still be served by ${open.gpuClass ?? open.kind} nodes in ${open.region}` });
    }
    const hosted = REGIONS.filter((r) => (place.subdivision ? r.subdivision === place.subdivision : r.country === place.country));
    for (const region of hosted) {
      const reachable = clientUniverse(doc).find((client) => NODE_CLASSES.some((c) => policy.forClient(client)(nodeOfClass(region.id, c)).allowed));
      if (reachable !== undefined) {
        out.push({ code: "embargo-open", message: `nodes in ${region.id} (embargoed ${where}) can still serve clients in ${reachable.subdivision ?? reachable.country}` });
      }
    }
  }
  return out;
}

/** Keeps one item per signature: contexts every rule treats alike need checking once. */
function representatives<T>(items: readonly T[], signature: (item: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const item of items) {
    const key = signature(item);
    if (!seen.has(key)) seen.set(key, item);
  }
  return [...seen.values()];
}

/** Rules that can never change a decision: denies that match nothing, allows that never win. */
function meaninglessRules(doc: PolicyDocument): Finding[] {
  const { residencies, tenants } = tenantAndResidencyValues(doc);
  const policy = new CompiledPolicy(doc, 0);
  const bit = (set: ReadonlySet<string> | undefined, value: string | undefined) => (set === undefined ? "-" : value !== undefined && set.has(value) ? "1" : "0");
  const sets = policy.rules.flatMap((r) => [r.match, r.except]);
  const clients = representatives(
    clientUniverse(doc, residencies).flatMap((c) => tenants.map((tenantHq) => (tenantHq === undefined ? c : { ...c, tenantHq }))),
    (c) => sets.map((m) => bit(m.clientCountry, c.country ?? UNKNOWN_COUNTRY) + bit(m.clientSubdivision, c.subdivision) + bit(m.tenantHq, c.tenantHq) + bit(m.residency, c.residency)).join(""),
  );
  const nodes = representatives(ALL_NODES, (n) => {
    const region = REGIONS.find((r) => r.id === n.region);
    return sets.map((m) => bit(m.nodeCountry, region?.country) + bit(m.nodeSubdivision, region?.subdivision) + bit(m.nodeRegion, n.region) + bit(m.nodeKind, n.kind) + bit(m.gpuClass, n.gpuClass)).join("");
  });
  const matters = new Set<string>();
  for (const client of clients) {
    const judge = policy.forClient(client);
    for (const node of nodes) {
      const decision = judge(node);
      // A deny counts when it matches; an allow only when it beats a deny-by-default.
      if (!decision.allowed || doc.defaultEffect === "deny") for (const id of decision.rules) matters.add(id);
    }
  }
  return doc.rules
    .filter((rule) => !matters.has(rule.id))
    .map((rule) => ({
      code: "meaningless-rule",
      rule: rule.id,
      message:
        rule.effect === "allow" && doc.defaultEffect === "allow"
          ? `allow rule ${rule.id} changes nothing: the default is allow and deny overrides allow`
          : `rule ${rule.id} never decides anything: it matches no client and node, or matching denies always win`,
    }));
}

// ---- diff and impact -----------------------------------------------------------------

export interface PolicyDiff {
  defaultEffect?: { before: string; after: string };
  groups: { kind: string; name: string; change: "added" | "removed" | "changed"; added: string[]; removed: string[] }[];
  rules: { id: string; change: "added" | "removed" | "changed" }[];
  summary: string;
}

export function diffPolicies(before: PolicyDocument | null, after: PolicyDocument): PolicyDiff {
  const groups: PolicyDiff["groups"] = [];
  for (const kind of ["countries", "subdivisions", "gpuClasses", "regions"] as const) {
    const a: Record<string, { members: string[] }> = before?.groups[kind] ?? {};
    const b: Record<string, { members: string[] }> = after.groups[kind];
    for (const name of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const am = new Set(a[name]?.members ?? []);
      const bm = new Set(b[name]?.members ?? []);
      const added = [...bm].filter((m) => !am.has(m));
      const removed = [...am].filter((m) => !bm.has(m));
      const change = a[name] === undefined ? "added" : b[name] === undefined ? "removed" : added.length + removed.length > 0 ? "changed" : null;
      if (change !== null) groups.push({ kind, name, change, added, removed });
    }
  }
  const rules: PolicyDiff["rules"] = [];
  const beforeRules = new Map((before?.rules ?? []).map((r) => [r.id, JSON.stringify(r)]));
  const afterRules = new Map(after.rules.map((r) => [r.id, JSON.stringify(r)]));
  for (const [id, text] of afterRules) {
    if (!beforeRules.has(id)) rules.push({ id, change: "added" });
    else if (beforeRules.get(id) !== text) rules.push({ id, change: "changed" });
  }
  for (const id of beforeRules.keys()) if (!afterRules.has(id)) rules.push({ id, change: "removed" });
  const defaultEffect = before !== null && before.defaultEffect !== after.defaultEffect ? { before: before.defaultEffect, after: after.defaultEffect } : undefined;
  const parts = [
    ...rules.map((r) => `${r.change} rule ${r.id}`),
    ...groups.map((g) => `${g.change} ${g.kind} group ${g.name}${g.added.length ? ` +${g.added.join(",")}` : ""}${g.removed.length ? ` -${g.removed.join(",")}` : ""}`),
    ...(defaultEffect ? [`default ${defaultEffect.before} -> ${defaultEffect.after}`] : []),
  ];
  return { ...(defaultEffect ? { defaultEffect } : {}), groups, rules, summary: parts.length ? parts.join("; ") : "no change" };
}

export interface ImpactChange {
  client: string;
  nodeClass: NodeClass;
  before: boolean;
  after: boolean;
}

/**
 * For every client country (and listed subdivision) x node class: can the client be served
 * by that class anywhere, before vs after. Only changed cells are returned.
 */
export function impactMatrix(before: CompiledPolicy | null, after: CompiledPolicy): { cells: number; changes: ImpactChange[] } {
  const clients = clientUniverse(after.document);
  if (before !== null) for (const c of clientUniverse(before.document)) if (!clients.some((x) => x.country === c.country && x.subdivision === c.subdivision)) clients.push(c);
  const changes: ImpactChange[] = [];
  for (const client of clients) {
    const judgeBefore = before?.forClient(client);
    const judgeAfter = after.forClient(client);
    for (const nodeClass of NODE_CLASSES) {
      const anywhere = (judge: ((n: NodeContext) => { allowed: boolean }) | undefined) => judge !== undefined && REGIONS.some((r) => judge(nodeOfClass(r.id, nodeClass)).allowed);
      const b = anywhere(judgeBefore);
      const a = anywhere(judgeAfter);
      if (a !== b) changes.push({ client: client.subdivision ?? client.country ?? UNKNOWN_COUNTRY, nodeClass, before: b, after: a });
    }
  }
  return { cells: clients.length * NODE_CLASSES.length, changes };
}

/** How many of the given (connected) nodes each client country gains or loses. */
export function fleetImpact(before: CompiledPolicy | null, after: CompiledPolicy, nodes: readonly NodeContext[]): { client: string; before: number; after: number; delta: number }[] {
  const out: { client: string; before: number; after: number; delta: number }[] = [];
  for (const client of clientUniverse(after.document)) {
    const jb = before?.forClient(client);
    const ja = after.forClient(client);
    let b = 0;
    let a = 0;
    for (const node of nodes) {
      if (jb?.(node).allowed) b++;
      if (ja(node).allowed) a++;
    }
    if (a !== b) out.push({ client: client.subdivision ?? client.country ?? UNKNOWN_COUNTRY, before: b, after: a, delta: a - b });
  }
  return out;
}

export interface TenantImpactChange {
  hqCountry: string;
  /** How many of the given tenants are headquartered there (own or parent headquarters). */
  tenants: number;
  nodeClass: NodeClass;
  before: boolean;
  after: boolean;
}

/**
 * For each headquarters country of the given tenants x node class: can a tenant headquartered
 * there be served that class anywhere, from any client country, before vs after. Only changed
 * cells are returned: "tenants headquartered in CN lose h100".
 */
export function tenantImpact(before: CompiledPolicy | null, after: CompiledPolicy, tenantsByHq: ReadonlyMap<string, number>): TenantImpactChange[] {
  const countries = clientUniverse(after.document).filter((c) => c.subdivision === undefined);
  const servable = (policy: CompiledPolicy | null, hq: string, nodeClass: NodeClass): boolean =>
    policy !== null && countries.some((client) => {
      const judge = policy.forClient({ ...client, tenantHq: hq });
      return REGIONS.some((r) => judge(nodeOfClass(r.id, nodeClass)).allowed);
    });
  const changes: TenantImpactChange[] = [];
  for (const [hqCountry, tenants] of [...tenantsByHq].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const nodeClass of NODE_CLASSES) {
      const b = servable(before, hqCountry, nodeClass);
      const a = servable(after, hqCountry, nodeClass);
      if (a !== b) changes.push({ hqCountry, tenants, nodeClass, before: b, after: a });
    }
  }
  return changes;
}
