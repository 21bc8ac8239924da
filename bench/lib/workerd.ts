/**
 * Runs a Worker in the bare workerd binary from a generated config: the production runtime
 * without wrangler dev's extra proxy and per-request logging loopback, which on this
 * machine cap even a hello-world Worker at ~300-1,000 requests/s (workerd alone: ~12k).
 */
import { spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../scripts/dev-gateway";
import { killGroup, spawnGroup } from "./process";

export function workerdBinary(): string {
  const pnpmDir = join(REPO_ROOT, "node_modules/.pnpm");
  const pkg = readdirSync(pnpmDir).filter((d) => d.startsWith("@cloudflare+workerd-linux-64@")).sort().at(-1);
  if (pkg === undefined) throw new Error("workerd is not installed (npm test installs it)");
  return join(pnpmDir, pkg, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");
}

/** Bundles the gateway exactly as `wrangler deploy` would, into `outDir/index.js`; returns the gzip size. */
export function bundleGateway(outDir: string): number {
  const out = spawnSync(process.execPath, [join(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", outDir], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  if (out.status !== 0) throw new Error(`bundling failed:\n${out.stdout}\n${out.stderr}`);
  const gzip = /gzip:\s+([\d.]+)\s+KiB/.exec(out.stdout + out.stderr);
  return gzip?.[1] ? Math.round(Number(gzip[1]) * 1024) : Number.NaN;
}

export interface WorkerdOptions {
  dir: string;
  port: number;
  /** Module file name inside `dir`. */
  module: string;
  text: Record<string, string>;
  durableObjects?: string[];
}

const quote = (s: string) => JSON.stringify(s);

/** Every Durable Object class the gateway bundle exports (wrangler.toml binds the same). */
export const GATEWAY_DURABLE_OBJECTS = ["RegionHub", "Directory", "DirectoryReplica", "PolicyStore", "CarrierStore", "OffloadLedger", "NodeRegistry", "TenantStore", "TenantLimiter", "TenantLedger", "LivenessClock"];
/**
 * The gateway's variables in every bench: bench-only secrets, and the local-run settings
 * (client geography from headers, nodes on loopback) that `npm start` puts in .dev.vars.
 */
export const BENCH_GATEWAY_VARS = {
  ADMIN_TOKEN: "bench-admin-token-0123456789",
  NODE_CREDENTIAL_KEY: "bench-credential-key-0123456789abcdef0123456789",
  DEV_TRUST_CLIENT_GEO: "true",
  DEV_NODE_ENDPOINTS: "loopback",
};
/** As in wrangler.toml. */
const COMPATIBILITY_FLAGS = ["enable_request_signal"];

export async function startWorkerd(options: WorkerdOptions): Promise<{ url: string; process: ChildProcess; stop(): void }> {
  const objects = options.durableObjects ?? [];
  mkdirSync(join(options.dir, "do"), { recursive: true });
  const bindings = [
    ...objects.map((cls) => `(name = ${quote(bindingName(cls))}, durableObjectNamespace = ${quote(cls)})`),
    ...Object.entries(options.text).map(([name, value]) => `(name = ${quote(name)}, text = ${quote(value)})`),
  ];
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "net", network = (allow = ["public", "private", "local"])),
    (name = "do-disk", disk = (path = ${quote(join(options.dir, "do"))}, writable = true)),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:${options.port}", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [ (name = ${quote(options.module)}, esModule = embed ${quote(options.module)}) ],
  compatibilityDate = "2026-11-01",
  compatibilityFlags = [ ${COMPATIBILITY_FLAGS.map(quote).join(", ")} ],
  globalOutbound = "net",
  bindings = [ ${bindings.join(", ")} ],
  durableObjectNamespaces = [ ${objects.map((cls) => `(className = ${quote(cls)}, uniqueKey = ${quote(`meridian-${cls}`)}, enableSql = true)`).join(", ")} ],
  durableObjectStorage = (localDisk = "do-disk"),
);
`;
  const configPath = join(options.dir, "config.capnp");
  writeFileSync(configPath, config);
  // Its log goes to a file, never a pipe: the bench blocks its own event loop while wrk runs
  // (spawnSync), and a workerd that fills an unread pipe blocks in write() and stops serving.
  const logPath = join(options.dir, "workerd.log");
  const log = openSync(logPath, "w");
  const child = spawnGroup(workerdBinary(), ["serve", "--experimental", configPath], { stdio: ["ignore", log, log] });
  closeSync(log);
  const stderrTail = () => readFileSync(logPath, "utf8").slice(-4000);
  const stop = () => killGroup(child);
  const url = `http://127.0.0.1:${options.port}`;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`workerd exited: ${stderrTail()}`);
    try {
      await fetch(`${url}/healthz`);
      return { url, process: child, stop };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  stop();
  throw new Error(`workerd did not listen: ${stderrTail()}`);
}

/** REGION_HUB for RegionHub, POLICY_STORE for PolicyStore: the names wrangler.toml binds. */
function bindingName(className: string): string {
  return className.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * A tenant for the bench's client requests, with limits far above any load the bench makes,
 * and the header its requests carry (every /v1 and /route request needs a tenant key).
 */
export async function benchTenantAuth(gatewayUrl: string, id = "bench"): Promise<{ authorization: string }> {
  const headers = { authorization: `Bearer ${BENCH_GATEWAY_VARS.ADMIN_TOKEN}`, "content-type": "application/json", "x-meridian-reason": "benchmark tenant" };
  const tenant = { id, name: id, hqCountry: "US", limits: { requestsPerMinute: 1_000_000, concurrentRequests: 10_000 } };
  const created = await fetch(`${gatewayUrl}/admin/tenants`, { method: "POST", headers, body: JSON.stringify(tenant) });
  if (created.status !== 201 && created.status !== 409) throw new Error(`bench tenant: ${created.status} ${await created.text()}`);
  const res = await fetch(`${gatewayUrl}/admin/tenants/${id}/keys`, { method: "POST", headers, body: "{}" });
  if (res.status !== 201) throw new Error(`bench tenant key: ${res.status} ${await res.text()}`);
  return { authorization: `Bearer ${((await res.json()) as { key: string }).key}` };
}
