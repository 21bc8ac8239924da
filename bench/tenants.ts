/**
 * What clients-as-tenants adds to each request on a warm isolate, beside the plain routing
 * decision: the key lookup (SHA-256 of the presented key, the per-isolate cache hit and the
 * constant-time compare of hashes), the tenant's policy judge (its HQ and parent's HQ as extra
 * contexts), and the limit check: a take from the isolate's grant and its release (what every
 * request pays), and the limiter object's grant arithmetic (paid once per grant, about once a
 * second per busy isolate, off the request path; its round trip is a network figure, not
 * measured here).
 * Runs in Node, on the gateway's own functions (WebCrypto's SHA-256 is Node's here).
 */
import { FleetIndex, route } from "@meridian/routing";
import { hashTenantKey } from "../workers/gateway/src/tenants/keys";
import { TenantKeyCache } from "../workers/gateway/src/tenants/key-cache";
import { GrantAuthority, GrantHolder } from "../workers/gateway/src/tenants/grants";
import { tenantContexts } from "../workers/gateway/src/tenants/policy-context";
import { benchFixtures } from "./routing";
import { printTable, summarize } from "./lib/stats";


const KEY = "mk_benchAbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
const TENANT = { id: "bench", name: "Bench", hqCountry: "SG", parentHqCountry: "CN", limits: { requestsPerMinute: 1_000_000_000, concurrentRequests: 1_000_000 }, createdAt: "2026-01-01T00:00:00.000Z", updatedAt: "2026-01-01T00:00:00.000Z" };

/** µs per call of `fn`, in batches (the clock is too coarse for one call), summarised. */
async function perCallUs(fn: () => unknown | Promise<unknown>, batches: number, batch: number): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  for (let b = 0; b < batches; b++) {
    const start = performance.now();
    for (let i = 0; i < batch; i++) await fn();
    samples.push(((performance.now() - start) * 1000) / batch);
  }
  const s = summarize(samples);
  return { p50: s.p50, p99: s.p99 };
}

export async function runTenantsBench(options: { smoke: boolean }): Promise<Record<string, number>> {
  const batches = options.smoke ? 50 : 400;
  const batch = 200;
  const hash = await hashTenantKey(KEY);
  // A store that answers like the TenantStore object; only the first lookup and syncs reach it.
  const store = {
    sync: async () => ({ seq: 1, reset: false, tenants: [], hashes: [] }),
    resolve: async (h: string) => (h === hash ? { keyId: "key_bench", hash, tenant: TENANT } : null),
  };
  const env = "bench";
  const cache = new TenantKeyCache<string>(() => store);
  const now = Date.now();
  await cache.sync(env);
  await cache.lookup(env, hash, () => {}, now);
  const storeCallsBefore = cache.resolveCalls;
  const lookup = await perCallUs(async () => cache.lookup(env, await hashTenantKey(KEY), () => {}, now), batches, batch);
  if (cache.resolveCalls !== storeCallsBefore) throw new Error("a warm lookup reached the store");

  // A holder that has a grant and keeps renewing it as it would in the background.
  const authority = new GrantAuthority();
  const holder = new GrantHolder("bench-isolate");
  let t = now;
  const limits = await perCallUs(() => {
    t += 1;
    let taken = holder.take(t, TENANT.limits, true);
    if (taken.kind !== "taken" || taken.refreshDue) {
      holder.answered(t, authority.grant(holder.ask(t, TENANT.limits), TENANT.limits, t, null));
      if (taken.kind !== "taken") taken = holder.take(t, TENANT.limits, false);
    }
    if (taken.kind !== "taken") throw new Error(`the bench tenant was refused: ${taken.kind}`);
    holder.release();
    return taken.remaining;
  }, batches, batch);
  let g = now;
  const grantHolder = new GrantHolder("bench-grants");
  const grants = await perCallUs(() => {
    g += 1;
    grantHolder.take(g, TENANT.limits, true);
    grantHolder.answered(g, authority.grant(grantHolder.ask(g, TENANT.limits), TENANT.limits, g, null));
    grantHolder.release();
  }, batches, batch);

  // The plain decision (baseline policy, 10k nodes) and the same with the tenant's contexts.
  const { policy, queries, makeFleet } = benchFixtures();
  const index = new FleetIndex(makeFleet(10_000, 42));
  let q = 0;
  const next = () => queries[q++ % queries.length] ?? queries[0];
  const decide = (tenant: { hqCountry: string; parentHqCountry?: string } | null) => {
    const query = next();
    if (query === undefined) return null;
    const located = { country: query.location.country, ...(query.location.subdivision ? { subdivision: query.location.subdivision } : {}) };
    const judge = tenant !== null ? policy.forAll(tenantContexts(located, tenant, query.residency)) : policy.forClient({ ...located, ...(query.residency ? { residency: query.residency } : {}) });
    return route(index, { client: query.location, requirements: query.requirements, allowed: (region, slot) => judge.allows(region, slot) });
  };
  const plain = await perCallUs(() => decide(null), batches, batch);
  const { parentHqCountry: _none, ...sgOnly } = TENANT;
  const tenant = await perCallUs(() => decide(sgOnly), batches, batch);
  // A subsidiary of a CN-HQ company: two contexts judged, and no advanced GPU anywhere, so
  // GPU requests search the whole fleet before they are refused (the routing work, not overhead).
  const subsidiary = await perCallUs(() => decide(TENANT), batches, batch);

  const round = (x: number) => Math.round(x * 100) / 100;
  printTable("tenants: per-request cost on a warm isolate (µs)", [
    { step: "plain routing decision (10k nodes, baseline policy)", p50: round(plain.p50), p99: round(plain.p99) },
    { step: "decision for a tenant (HQ SG)", p50: round(tenant.p50), p99: round(tenant.p99) },
    { step: "decision for a SG tenant with a CN parent (refusals search the fleet)", p50: round(subsidiary.p50), p99: round(subsidiary.p99) },
    { step: "key lookup: SHA-256 + cache hit + constant-time compare", p50: round(lookup.p50), p99: round(lookup.p99) },
    { step: "limit check: take from the isolate's grant and release (per request)", p50: round(limits.p50), p99: round(limits.p99) },
    { step: "one grant in the limiter object (per grant, ~1/s per busy isolate)", p50: round(grants.p50), p99: round(grants.p99) },
  ]);
  return {
    tenants_key_lookup_us_p50: round(lookup.p50),
    tenants_limit_check_us_p50: round(limits.p50),
    tenants_grant_us_p50: round(grants.p50),
    tenants_plain_decision_us_p50: round(plain.p50),
    tenants_decision_with_tenant_us_p50: round(tenant.p50),
    tenants_decision_cn_parent_us_p50: round(subsidiary.p50),
  };
}
