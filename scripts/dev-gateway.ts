/**
 * Starts the gateway locally the way a developer runs it: `wrangler dev` (workerd, Durable
 * Objects in local SQLite). Shared by `npm start` and the end-to-end tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { readDevVars } from "@meridian/node-agent/cli";
import { createServer } from "node:net";
import { join } from "node:path";

export const REPO_ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

export interface DevSecrets {
  ADMIN_TOKEN: string;
  NODE_CREDENTIAL_KEY: string;
}

/**
 * Dev-only settings every local run needs; added to an existing .dev.vars that lacks them
 * (a checkout from before they existed), never changed when present.
 */
const DEV_SETTINGS: [name: string, value: string, why: string][] = [
  ["DEV_TRUST_CLIENT_GEO", "true", "lets x-client-lat/lon/country/subdivision headers play a client anywhere"],
  ["DEV_NODE_ENDPOINTS", "loopback", "nodes may serve over http on 127.0.0.1 (production demands https on a public hostname)"],
];

/** Reads .dev.vars, creating it with random secrets (and the dev-only settings) if missing. */
export function ensureDevVars(root = REPO_ROOT): { path: string; created: boolean; secrets: DevSecrets } {
  const path = join(root, ".dev.vars");
  const created = !existsSync(path);
  if (created) {
    writeFileSync(
      path,
      [
        "# Local secrets for wrangler dev, made by `npm start`. Never committed (see .gitignore).",
        `ADMIN_TOKEN=${randomBytes(24).toString("base64url")}`,
        `NODE_CREDENTIAL_KEY=${randomBytes(32).toString("base64url")}`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
  }
  let vars = readDevVars(path);
  const missing = DEV_SETTINGS.filter(([name]) => !vars.has(name));
  if (missing.length > 0) {
    appendFileSync(path, missing.map(([name, value, why]) => `# Dev only: ${why}.\n${name}=${value}\n`).join(""));
    vars = readDevVars(path);
  }
  const ADMIN_TOKEN = vars.get("ADMIN_TOKEN");
  const NODE_CREDENTIAL_KEY = vars.get("NODE_CREDENTIAL_KEY");
  if (ADMIN_TOKEN === undefined || NODE_CREDENTIAL_KEY === undefined) {
    throw new Error(`${path} lacks ADMIN_TOKEN or NODE_CREDENTIAL_KEY; delete it to have it made again`);
  }
  return { path, created, secrets: { ADMIN_TOKEN, NODE_CREDENTIAL_KEY } };
}

/** The tenant `npm start` makes on first run, for the README's examples. */
export const DEMO_TENANT = { id: "demo", name: "Demo tenant (local runs)", hqCountry: "US", limits: { requestsPerMinute: 6000, concurrentRequests: 64 } };

/**
 * Makes sure the demo tenant exists and DEMO_TENANT_KEY in .dev.vars is a live key for it:
 * made on first run, made again when the local state was wiped (the old key answers 401).
 * Returns the key.
 */
export async function ensureDemoTenant(gatewayUrl: string, adminToken: string, devVarsPath: string): Promise<{ key: string; created: boolean }> {
  const existing = readDevVars(devVarsPath).get("DEMO_TENANT_KEY");
  if (existing !== undefined && (await fetch(`${gatewayUrl}/route`, { headers: { authorization: `Bearer ${existing}` } })).status !== 401) return { key: existing, created: false };
  const headers = { authorization: `Bearer ${adminToken}`, "content-type": "application/json", "x-meridian-reason": "npm start: demo tenant for local runs" };
  const tenant = await fetch(`${gatewayUrl}/admin/tenants`, { method: "POST", headers, body: JSON.stringify(DEMO_TENANT) });
  if (tenant.status !== 201 && tenant.status !== 409) throw new Error(`creating the demo tenant failed: ${tenant.status} ${await tenant.text()}`);
  const res = await fetch(`${gatewayUrl}/admin/tenants/${DEMO_TENANT.id}/keys`, { method: "POST", headers, body: JSON.stringify({ name: "npm start" }) });
  if (res.status !== 201) throw new Error(`creating the demo tenant's key failed: ${res.status} ${await res.text()}`);
  const { key } = (await res.json()) as { key: string };
  const kept = readFileSync(devVarsPath, "utf8").split("\n").filter((line) => !line.startsWith("DEMO_TENANT_KEY=") && !line.startsWith("# The demo tenant's key"));
  const text = kept.join("\n").replace(/\n*$/, "\n");
  writeFileSync(devVarsPath, `${text}# The demo tenant's key (a client key, sent as Authorization: Bearer), made by \`npm start\`.\nDEMO_TENANT_KEY=${key}\n`, { mode: 0o600 });
  return { key, created: true };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export interface LocalGateway {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  port: number;
  /** Durable Object state directory (default .wrangler/state). */
  persistTo?: string;
  /** Where wrangler's own output goes; "inherit" shows it, "ignore" hides it. */
  output?: "inherit" | "ignore" | ((line: string) => void);
  readyTimeoutMs?: number;
  logLevel?: "debug" | "info" | "log" | "warn" | "error" | "none";
  /** Extra worker vars for this run (wrangler dev --var), e.g. DEV_CHAOS_HOOKS. */
  vars?: Record<string, string>;
}

/**
 * A gateway left behind by an earlier run whose launcher was killed outright (its exit
 * handler never ran) would hold the same local state and keep rebuilding in the background.
 * Each run records its process group next to the state; the next run stops that group if
 * it is orphaned (its parent is gone) and still a wrangler.
 */
function stopOrphanedGateway(pidFile: string): void {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, "utf8").trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const command = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    if (parent !== 1 || !command.includes("wrangler")) return;
    console.warn(`[gateway] stopping a gateway orphaned by an earlier run (process group ${pid})`);
    process.kill(-pid, "SIGKILL");
  } catch {
    // Gone already, or not ours to judge (no /proc): nothing to stop.
  }
}

export async function startGateway(options: GatewayOptions): Promise<LocalGateway> {
  const url = `http://127.0.0.1:${options.port}`;
  const stateDir = options.persistTo ?? join(REPO_ROOT, ".wrangler", "state");
  const pidFile = join(stateDir, "gateway.pid");
  stopOrphanedGateway(pidFile);
  const args = [
    join(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js"),
    "dev",
    "--ip", "127.0.0.1",
    "--port", String(options.port),
    "--inspector-port", String(await freePort()),
    "--show-interactive-dev-session=false",
    // "log" keeps the worker's own console lines and drops one line per request.
    "--log-level", options.logLevel ?? "log",
    ...(options.persistTo ? ["--persist-to", options.persistTo] : []),
    ...Object.entries(options.vars ?? {}).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ];
  const output = options.output ?? "inherit";
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    // Its own process group: wrangler forks workerd and a CLI child, and stop() signals them all.
    detached: true,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
    stdio: ["ignore", typeof output === "function" ? "pipe" : output, typeof output === "function" ? "pipe" : output],
  });
  if (typeof output === "function") {
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = "";
      stream?.on("data", (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) output(line);
      });
    }
  }
  if (child.pid !== undefined) {
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(pidFile, `${child.pid}\n`);
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // The group is already gone.
    }
  };
  // Never leave a detached gateway behind when this process ends, however it ends.
  process.once("exit", () => signalGroup("SIGKILL"));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    signalGroup("SIGTERM");
    const killTimer = setTimeout(() => signalGroup("SIGKILL"), 5000);
    await exited;
    clearTimeout(killTimer);
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode} before it was ready`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return { url, process: child, stop };
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the gateway did not answer ${url}/healthz in time`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
