import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "../../scripts/dev-gateway";

export interface AgentProcess {
  id: string;
  process: ChildProcess;
  endpoint: string;
  /** Everything the agent logged, for failure messages. */
  log: string[];
}

export interface AgentSpec {
  id: string;
  region: string;
  kind: "gpu" | "hotspot";
  gpu?: { class: string; vramGb: number; count: number };
  capacity?: number;
  heartbeatMs?: number;
  tokenMs?: number;
}

/** Starts a real `meridian-node` process and resolves once the gateway has welcomed it. */
export async function startAgent(gatewayUrl: string, adminToken: string, spec: AgentSpec): Promise<AgentProcess> {
  const args = [
    join(REPO_ROOT, "packages/node-agent/bin/meridian-node.mjs"),
    "--gateway", gatewayUrl,
    "--id", spec.id,
    "--kind", spec.kind,
    "--region", spec.region,
    "--capacity", String(spec.capacity ?? 8),
    "--heartbeat-ms", String(spec.heartbeatMs ?? 1000),
    "--token-ms", String(spec.tokenMs ?? 15),
    ...(spec.gpu ? ["--gpu", spec.gpu.class, "--vram", String(spec.gpu.vramGb), "--gpus", String(spec.gpu.count)] : []),
  ];
  // The real Node binary, not a wrapper script, so signals reach the agent itself.
  const child = spawn(process.execPath, args, { env: { ...process.env, ADMIN_TOKEN: adminToken }, stdio: ["ignore", "pipe", "pipe"] });
  const log: string[] = [];
  child.stderr.on("data", (chunk: Buffer) => log.push(chunk.toString()));
  const spawnedAt = performance.now();
  return new Promise((resolve, reject) => {
    // ~10x a quiet start (the agent compiles, enrolls and connects): CI is a busy 2-core machine.
    const timer = setTimeout(() => reject(new Error(`agent ${spec.id} not ready in 60 s:\n${log.join("")}`)), 60_000);
    let buffered = "";
    child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const ready = /^READY (.*)$/m.exec(buffered);
      if (ready?.[1] !== undefined) {
        clearTimeout(timer);
        const info = JSON.parse(ready[1]) as { endpoint: string };
        console.log(`[agents] ${spec.id} ready ${(performance.now() - spawnedAt).toFixed(0)} ms after the spawn`);
        resolve({ id: spec.id, process: child, endpoint: info.endpoint, log });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`agent ${spec.id} exited with ${code}:\n${log.join("")}`));
    });
  });
}

export function stopAgent(agent: AgentProcess): void {
  if (agent.process.exitCode !== null || agent.process.signalCode !== null) return;
  agent.process.kill("SIGCONT");
  agent.process.kill("SIGKILL");
}
