import type { NodeRecord } from "@meridian/protocol";

/** Upper bounds, in nodes examined per decision (the routing work done). */
const EXAMINED_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536];

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }
  observe(value: number): void {
    this.sum += value;
    this.count++;
    const at = this.bounds.findIndex((b) => value <= b);
    if (at >= 0) this.counts[at] = (this.counts[at] ?? 0) + 1;
  }
  render(name: string, help: string): string[] {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    let cumulative = 0;
    this.bounds.forEach((b, i) => {
      cumulative += this.counts[i] ?? 0;
      lines.push(`${name}_bucket{le="${b}"} ${cumulative}`);
    });
    lines.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return lines;
  }
}

const label = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/**
 * Per-isolate request metrics plus fleet-wide figures from the Directory, in Prometheus
 * text format. Each isolate counts its own requests: at scale, scrape through Workers
 * Analytics Engine or logs instead (docs/design.md).
 */
export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly examined = new Histogram(EXAMINED_BUCKETS);

  private readonly byNode = new Map<string, { served: number; failed: number; since: number }>();
  /** Per tenant: requests by outcome ("served", "rate_limited", ...), and tokens by type. */
  private readonly tenantRequests = new Map<string, number>();
  private readonly tenantTokens = new Map<string, number>();

  countTenantRequest(tenant: string, outcome: string): void {
    const key = `${tenant}\u0000${outcome}`;
    this.tenantRequests.set(key, (this.tenantRequests.get(key) ?? 0) + 1);
  }

  countTenantTokens(tenant: string, prompt: number, completion: number): void {
    if (prompt + completion === 0) return;
    for (const [type, n] of [["prompt", prompt], ["completion", completion]] as const) {
      const key = `${tenant}\u0000${type}`;
      this.tenantTokens.set(key, (this.tenantTokens.get(key) ?? 0) + n);
    }
  }

  /** One proxy attempt at a node (for the operator's self-view; this isolate only). */
  countAttempt(nodeId: string, failed: boolean): void {
    let counts = this.byNode.get(nodeId);
    if (counts === undefined) this.byNode.set(nodeId, (counts = { served: 0, failed: 0, since: Date.now() }));
    if (failed) counts.failed++;
    else counts.served++;
  }

  nodeRequests(nodeId: string): { served: number; failed: number; since: string | null; scope: "this isolate" } {
    const counts = this.byNode.get(nodeId);
    return { served: counts?.served ?? 0, failed: counts?.failed ?? 0, since: counts ? new Date(counts.since).toISOString() : null, scope: "this isolate" };
  }

  countRequest(route: string, outcome: string, status: number): void {
    const key = `${route}\u0000${outcome}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /**
   * Only the work done is counted: Workers' clocks do not advance during execution in
   * production (and move in 1 ms steps locally), so a timed 5-35 us decision would read 0 or
   * >= 1 ms. Decision times are measured by the benchmark instead.
   */
  observeDecision(examinedNodes: number): void {
    this.examined.observe(examinedNodes);
  }

  render(fleet: { nodes: readonly NodeRecord[]; heartbeats: Record<string, number>; snapshotVersion: number; policyVersion: number | null; ejected: number }): string {
    const lines: string[] = ["# HELP meridian_requests_total Client requests by route, outcome and status, counted by this isolate only (all isolates: the REQUEST_EVENTS Analytics Engine dataset, docs/scale.md).", "# TYPE meridian_requests_total counter"];
    for (const [key, count] of [...this.requests.entries()].sort()) {
      const [route = "", outcome = "", status = ""] = key.split("\u0000");
      lines.push(`meridian_requests_total{route="${label(route)}",outcome="${label(outcome)}",status="${status}"} ${count}`);
    }
    lines.push("# HELP meridian_tenant_requests_total Client requests per tenant by outcome (served, or the refusal's reason).", "# TYPE meridian_tenant_requests_total counter");
    for (const [key, count] of [...this.tenantRequests.entries()].sort()) {
      const [tenant = "", outcome = ""] = key.split("\u0000");
      lines.push(`meridian_tenant_requests_total{tenant="${label(tenant)}",outcome="${label(outcome)}"} ${count}`);
    }
    lines.push("# HELP meridian_tenant_tokens_total Tokens per tenant as nodes reported them in usage, by type.", "# TYPE meridian_tenant_tokens_total counter");
    for (const [key, count] of [...this.tenantTokens.entries()].sort()) {
      const [tenant = "", type = ""] = key.split("\u0000");
      lines.push(`meridian_tenant_tokens_total{tenant="${label(tenant)}",type="${type}"} ${count}`);
    }
    lines.push(...this.examined.render("meridian_routing_examined_nodes", "Nodes examined per routing decision, in this isolate only."));
    lines.push("# HELP meridian_nodes Connected nodes by state and region.", "# TYPE meridian_nodes gauge");
    const byState = new Map<string, number>();
    for (const node of fleet.nodes) {
      const key = `${node.health}\u0000${node.region}`;
      byState.set(key, (byState.get(key) ?? 0) + 1);
    }
    for (const [key, count] of [...byState.entries()].sort()) {
      const [state = "", region = ""] = key.split("\u0000");
      lines.push(`meridian_nodes{state="${state}",region="${region}"} ${count}`);
    }
    lines.push("# HELP meridian_heartbeats_received_total JSON heartbeats received by region hubs (pings are answered without waking them).", "# TYPE meridian_heartbeats_received_total counter");
    for (const [region, count] of Object.entries(fleet.heartbeats).sort()) lines.push(`meridian_heartbeats_received_total{region="${region}"} ${count}`);
    lines.push("# HELP meridian_ejected_nodes Nodes this isolate has ejected after consecutive failures.", "# TYPE meridian_ejected_nodes gauge", `meridian_ejected_nodes ${fleet.ejected}`);
    lines.push("# HELP meridian_policy_version Policy version in force in this isolate (-1: none loaded).", "# TYPE meridian_policy_version gauge", `meridian_policy_version ${fleet.policyVersion ?? -1}`);
    lines.push("# HELP meridian_snapshot_version Fleet snapshot version held by this isolate.", "# TYPE meridian_snapshot_version gauge", `meridian_snapshot_version ${fleet.snapshotVersion}`);
    return `${lines.join("\n")}\n`;
  }
}
