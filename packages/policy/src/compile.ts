import { SLOT_COUNT, UNKNOWN_COUNTRY, slotContext, slotOf, type GpuClass, type NodeKind, type PolicyDocument, type PolicyMatch, type PolicyRule } from "@meridian/protocol";
import { REGIONS, getRegion, regionIndex } from "@meridian/regions";

/** Who is asking. Unknown country counts as "XX"; absent tenant or residency matches no rule on them. */
export interface ClientContext {
  country?: string;
  subdivision?: string;
  tenantHq?: string;
  residency?: string;
}

export interface NodeContext {
  region: string;
  kind: NodeKind;
  gpuClass?: GpuClass;
}

export interface Decision {
  allowed: boolean;
  /** The rules that decided: every matching deny, else every matching allow, else the default. */
  rules: string[];
}

/**
 * The policy for one client. Called with a node, it gives the verdict and the deciding rules;
 * `allows(region, slot)` is the same verdict as routing asks it on its hot path, for nodes of
 * catalog region `region` (index into REGIONS) in policy slot `slot` (see slotOf).
 */
export interface NodeJudge {
  (node: NodeContext): Decision;
  readonly allows: (region: number, slot: number) => boolean;
}

export const DEFAULT_RULE_ID = { allow: "default-allow", deny: "default-deny" } as const;

type FieldSets = { [K in keyof PolicyMatch]?: ReadonlySet<string> };

interface CompiledRule {
  id: string;
  effect: "allow" | "deny";
  match: FieldSets;
  except: FieldSets;
}

const CLIENT_FIELDS = ["clientCountry", "clientSubdivision", "tenantHq", "residency"] as const;
const NODE_FIELDS = ["nodeCountry", "nodeSubdivision", "nodeRegion", "nodeKind", "gpuClass"] as const;
type ClientField = (typeof CLIENT_FIELDS)[number];
type NodeField = (typeof NODE_FIELDS)[number];

/** Which group kind each field's @references must name. */
export const FIELD_GROUP_KIND: Record<keyof PolicyMatch, keyof PolicyDocument["groups"] | null> = {
  clientCountry: "countries",
  tenantHq: "countries",
  nodeCountry: "countries",
  clientSubdivision: "subdivisions",
  nodeSubdivision: "subdivisions",
  nodeRegion: "regions",
  gpuClass: "gpuClasses",
  nodeKind: null,
  residency: null,
};

export class PolicyCompileError extends Error {}

function resolveField(doc: PolicyDocument, field: keyof PolicyMatch, values: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const value of values) {
    if (!value.startsWith("@")) {
      out.add(value);
      continue;
    }
    const kind = FIELD_GROUP_KIND[field];
    const group = kind === null ? undefined : doc.groups[kind][value.slice(1)];
    if (group === undefined) throw new PolicyCompileError(`${field} refers to unknown ${kind ?? "group"} group ${value}`);
    for (const member of group.members) out.add(member);
  }
  return out;
}

function compileMatch(doc: PolicyDocument, match: PolicyMatch | undefined): FieldSets {
  const sets: FieldSets = {};
  if (match === undefined) return sets;
  for (const field of Object.keys(match) as (keyof PolicyMatch)[]) {
    const values = match[field];
    if (values !== undefined) sets[field] = resolveField(doc, field, values);
  }
  return sets;
}

function clientValue(client: ClientContext, field: ClientField): string | undefined {
  switch (field) {
    case "clientCountry":
      return client.country ?? UNKNOWN_COUNTRY;
    case "clientSubdivision":
      return client.subdivision;
    case "tenantHq":
      return client.tenantHq;
    case "residency":
      return client.residency;
  }
}

function nodeValue(node: NodeContext, field: NodeField): string | undefined {
  switch (field) {
    case "nodeCountry":
      return getRegion(node.region)?.country;
    case "nodeSubdivision":
      return getRegion(node.region)?.subdivision;
    case "nodeRegion":
      return node.region;
    case "nodeKind":
      return node.kind;
    case "gpuClass":
      return node.gpuClass;
  }
}

const holds = (set: ReadonlySet<string> | undefined, value: string | undefined) => set !== undefined && value !== undefined && set.has(value);

/** Client judges kept per client context; real traffic repeats a few thousand contexts at most. */
const JUDGE_CACHE_LIMIT = 4096;

/**
 * A policy version compiled for the hot path: group references resolved to sets, rules
 * split by what they look at, and one judge per client context holding its verdicts.
 */
export class CompiledPolicy {
  readonly rules: readonly CompiledRule[];
  /** Residency tags some rule enforces; a request asking for another one cannot be honoured. */
  readonly residencies: ReadonlySet<string>;
  private readonly reasons: ReadonlyMap<string, string>;
  private readonly judges = new Map<string, NodeJudge>();
  /** Headquarters countries some rule names; any other is judged exactly like no headquarters. */
  private readonly namedTenantHqs: ReadonlySet<string>;
  private readonly composites = new Map<string, NodeJudge>();

  constructor(
    readonly document: PolicyDocument,
    readonly version: number,
  ) {
    this.rules = document.rules.map((r: PolicyRule) => ({ id: r.id, effect: r.effect, match: compileMatch(document, r.match), except: compileMatch(document, r.except) }));
    this.residencies = new Set(document.rules.flatMap((r) => [...(r.match.residency ?? []), ...(r.except?.residency ?? [])]));
    this.reasons = new Map(document.rules.map((r) => [r.id, r.reason]));
    this.namedTenantHqs = new Set(this.rules.flatMap((r) => [...(r.match.tenantHq ?? []), ...(r.except.tenantHq ?? [])]));
  }

  /** The human reason of a rule id (or of the default). */
  reasonOf(ruleId: string): string {
    if (ruleId === DEFAULT_RULE_ID.deny) return "no rule allows this and the policy denies by default";
    if (ruleId === DEFAULT_RULE_ID.allow) return "no rule applies; the policy allows by default";
    return this.reasons.get(ruleId) ?? ruleId;
  }

  /** The verdict for one client on one node. */
  evaluate(client: ClientContext, node: NodeContext): Decision {
    return this.forClient(client)(node);
  }

  /** A judge for one client: client-side conditions are settled once, node-side once per (region, slot). */
  forClient(asked: ClientContext): NodeJudge {
    // A headquarters no rule names decides nothing: such tenants share the judges of clients
    // without one, so tenants do not multiply the judge cache.
    const client = asked.tenantHq !== undefined && !this.namedTenantHqs.has(asked.tenantHq) ? withoutTenantHq(asked) : asked;
    const key = contextKey(client);
    const cached = this.judges.get(key);
    if (cached !== undefined) return cached;
    const applicable = this.rules.filter(
      (rule) =>
        CLIENT_FIELDS.every((f) => rule.match[f] === undefined || holds(rule.match[f], clientValue(client, f))) &&
        !CLIENT_FIELDS.some((f) => holds(rule.except[f], clientValue(client, f))),
    );
    const defaultDecision: Decision = { allowed: this.document.defaultEffect === "allow", rules: [DEFAULT_RULE_ID[this.document.defaultEffect]] };
    const evaluate = (node: NodeContext): Decision => {
      const deny: string[] = [];
      const allow: string[] = [];
      for (const rule of applicable) {
        if (!NODE_FIELDS.every((f) => rule.match[f] === undefined || holds(rule.match[f], nodeValue(node, f)))) continue;
        if (NODE_FIELDS.some((f) => holds(rule.except[f], nodeValue(node, f)))) continue;
        (rule.effect === "deny" ? deny : allow).push(rule.id);
      }
      return deny.length > 0 ? { allowed: false, rules: deny } : allow.length > 0 ? { allowed: true, rules: allow } : defaultDecision;
    };
    // The one verdict cache: a node's verdict depends only on its region and slot, so each
    // (region, slot) is judged once per client judge and kept in a flat array. A code is
    // 2 * (1 + position in `decisions`) + (1 when allowed); 0 means not judged yet.
    const codes = new Uint16Array(REGIONS.length * SLOT_COUNT);
    const decisions: Decision[] = [];
    const positions = new Map<string, number>();
    const settle = (region: number, slot: number): number => {
      const at = region * SLOT_COUNT + slot;
      const id = REGIONS[region]?.id;
      // Outside the catalog or the slot range nothing is known: refuse (fail closed).
      if (id === undefined || slot < 0 || slot >= SLOT_COUNT) return 2;
      const decision = evaluate({ region: id, ...slotContext(slot) });
      const key = `${decision.allowed ? 1 : 0}${decision.rules.join(",")}`;
      let position = positions.get(key);
      if (position === undefined) {
        position = decisions.push(decision) - 1;
        positions.set(key, position);
      }
      const code = 2 * (1 + position) + (decision.allowed ? 1 : 0);
      codes[at] = code;
      return code;
    };
    const codeAt = (region: number, slot: number): number => {
      const code = slot >= 0 && slot < SLOT_COUNT ? (codes[region * SLOT_COUNT + slot] ?? 0) : 0;
      return code !== 0 ? code : settle(region, slot);
    };
    const judge = (node: NodeContext): Decision => {
      const region = regionIndex(node.region);
      // A GPU class on a non-GPU node is not a slot: judge such an odd context directly.
      if (region < 0 || (node.kind !== "gpu" && node.gpuClass !== undefined)) return evaluate(node);
      return decisions[(codeAt(region, slotOf(node.kind, node.gpuClass)) >> 1) - 1] ?? evaluate(node);
    };
    const allows = (region: number, slot: number): boolean => (codeAt(region, slot) & 1) === 1;
    const compiled: NodeJudge = Object.assign(judge, { allows });
    if (this.judges.size >= JUDGE_CACHE_LIMIT) this.judges.clear();
    this.judges.set(key, compiled);
    return compiled;
  }

  /**
   * One judge for several client contexts at once: a node is allowed only when every context
   * allows it (so a tenant's own and its parent's headquarters are both judged, and a
   * request's residency can narrow the tenant's but never widen it). A refusal names the
   * rules of the first context that refuses; an allowance, the rules of all of them.
   */
  forAll(clients: readonly ClientContext[]): NodeJudge {
    const distinct = [...new Map(clients.map((c) => [contextKey(c), c])).values()];
    const [first, ...rest] = distinct;
    if (first === undefined) return this.forClient({});
    if (rest.length === 0) return this.forClient(first);
    const key = distinct.map(contextKey).join("&");
    const cached = this.composites.get(key);
    if (cached !== undefined) return cached;
    const judges = distinct.map((c) => this.forClient(c));
    const judge = (node: NodeContext): Decision => {
      const verdicts = judges.map((j) => j(node));
      const refused = verdicts.find((v) => !v.allowed);
      return refused ?? { allowed: true, rules: [...new Set(verdicts.flatMap((v) => v.rules))] };
    };
    // Its own verdict cache per (region, slot), so the hot path costs what a single judge does.
    const verdicts = new Uint8Array(REGIONS.length * SLOT_COUNT);
    const allows = (region: number, slot: number): boolean => {
      const inRange = region >= 0 && region < REGIONS.length && slot >= 0 && slot < SLOT_COUNT;
      const at = region * SLOT_COUNT + slot;
      const known = inRange ? (verdicts[at] ?? 0) : 0;
      if (known !== 0) return known === 2;
      const allowed = judges.every((j) => j.allows(region, slot));
      if (inRange) verdicts[at] = allowed ? 2 : 1;
      return allowed;
    };
    const composite: NodeJudge = Object.assign(judge, { allows });
    if (this.composites.size >= JUDGE_CACHE_LIMIT) this.composites.clear();
    this.composites.set(key, composite);
    return composite;
  }
}

function withoutTenantHq(client: ClientContext): ClientContext {
  const { tenantHq: _ignored, ...rest } = client;
  return rest;
}

const contextKey = (client: ClientContext) => `${client.country ?? ""}|${client.subdivision ?? ""}|${client.tenantHq ?? ""}|${client.residency ?? ""}`;

export function compilePolicy(document: PolicyDocument, version: number): CompiledPolicy {
  return new CompiledPolicy(document, version);
}
