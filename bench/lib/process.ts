import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "../../scripts/dev-gateway";

/** Kills a process group started by spawnGroup; quiet when it is already gone. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Spawns a process in its own group (servers fork: workerd, wrangler, haproxy) and makes
 * sure the whole group dies with this process, however the benchmark ends.
 */
export function spawnGroup(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, { ...options, detached: true });
  process.once("exit", () => killGroup(child));
  return child;
}

/**
 * `meridian-sim` as its own process group (optionally pinned to one core with taskset);
 * resolves once it prints READY.
 */
export function startSimProcess(gatewayUrl: string, adminToken: string, args: readonly string[], options: { core?: number; readyTimeoutMs?: number } = {}): Promise<ChildProcess> {
  const sim = [join(REPO_ROOT, "packages/node-agent/bin/meridian-sim.mjs"), "--gateway", gatewayUrl, ...args];
  const pinned = options.core !== undefined && spawnSync("sh", ["-c", "command -v taskset"]).status === 0;
  const spawnOptions: SpawnOptions = { env: { ...process.env, ADMIN_TOKEN: adminToken }, stdio: ["ignore", "pipe", "ignore"] };
  const child = pinned ? spawnGroup("taskset", ["-c", String(options.core), process.execPath, ...sim], spawnOptions) : spawnGroup(process.execPath, sim, spawnOptions);
  return untilReady(child, "simulator", options.readyTimeoutMs ?? 60_000);
}

/** Resolves with the child once it prints READY on stdout; rejects when it exits first or is late. */
export function untilReady(child: ChildProcess, what: string, timeoutMs: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready in ${timeoutMs / 1000} s`)), timeoutMs);
    child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("READY")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}`));
    });
  });
}
