/**
 * CPU profile of the gateway worker under load: bare workerd with its inspector, a
 * simulated fleet, wrk POSTing the bench's chat completion for 5 s; prints the top self-time
 * functions, the gateway's own functions by total (inclusive) time, and
 * writes /tmp/gateway.cpuprofile (open it in Chrome DevTools).
 *   npx tsx bench/profile-gateway.ts
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { freePort } from "../scripts/dev-gateway";
import { killGroup, spawnGroup, startSimProcess } from "./lib/process";
import { bundleGateway, GATEWAY_DURABLE_OBJECTS, startWorkerd, workerdBinary, BENCH_GATEWAY_VARS, benchTenantAuth } from "./lib/workerd";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
  children?: number[];
}

const secrets = BENCH_GATEWAY_VARS;
const dir = mkdtempSync(join(tmpdir(), "meridian-profile-"));
bundleGateway(dir);
const port = await freePort();
const inspectorPort = await freePort();
// startWorkerd writes the config; restart the same config with the inspector on.
(await startWorkerd({ dir, port, module: "index.js", text: { ...secrets }, durableObjects: GATEWAY_DURABLE_OBJECTS })).stop();
await new Promise((r) => setTimeout(r, 300));
const workerd = spawnGroup(workerdBinary(), ["serve", "--experimental", `--inspector-addr=127.0.0.1:${inspectorPort}`, join(dir, "config.capnp")], { stdio: "ignore" });
await new Promise((r) => setTimeout(r, 1500));
const sim = await startSimProcess(`http://127.0.0.1:${port}`, secrets.ADMIN_TOKEN, ["--nodes", "140", "--port", String(await freePort()), "--token-ms", "1"]);
await new Promise((r) => setTimeout(r, 1000));

const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as { webSocketDebuggerUrl: string }[];
const target = targets[0];
if (target === undefined) throw new Error("workerd exposes no inspector target");
const inspector = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((r) => inspector.on("open", r));
let nextId = 0;
const pending = new Map<number, (result: unknown) => void>();
inspector.on("message", (data) => {
  const message = JSON.parse(String(data)) as { id?: number; result?: unknown };
  if (message.id !== undefined) pending.get(message.id)?.(message.result);
});
const send = (method: string, params = {}) =>
  new Promise<unknown>((resolve) => {
    const id = ++nextId;
    pending.set(id, resolve);
    inspector.send(JSON.stringify({ id, method, params }));
  });

await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 100 });
await send("Profiler.start");
const auth = await benchTenantAuth(`http://127.0.0.1:${port}`);
const headers = ["-H", `authorization: ${auth.authorization}`, "-H", "x-client-lat: 35.6", "-H", "x-client-lon: 139.6", "-H", "x-client-country: JP"];
const script = join(dir, "chat.lua");
const chat = JSON.stringify({ model: "llama-3.1-8b-instruct", messages: [{ role: "user", content: "Say one word." }], max_tokens: 1 });
writeFileSync(script, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(chat)}\nwrk.headers["content-type"] = "application/json"\n`);
const wrk = execFileSync("wrk", ["-t1", "-c32", "-d5s", "-s", script, ...headers, `http://127.0.0.1:${port}/v1/chat/completions`], { encoding: "utf8" });
console.log(/Requests\/sec:\s+\S+/.exec(wrk)?.[0]);
const { profile } = (await send("Profiler.stop")) as { profile: { nodes: ProfileNode[] } };
writeFileSync("/tmp/gateway.cpuprofile", JSON.stringify(profile));

const selfTime = new Map<string, number>();
let total = 0;
for (const node of profile.nodes) {
  const key = `${node.callFrame.functionName || "(anonymous)"} ${node.callFrame.url.split("/").pop() ?? ""}:${node.callFrame.lineNumber}`;
  selfTime.set(key, (selfTime.get(key) ?? 0) + node.hitCount);
  total += node.hitCount;
}
for (const [key, hits] of [...selfTime.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${((100 * hits) / total).toFixed(1).padStart(5)} % ${key}`);
// Total time: a function's own samples plus everything it called (counted once per stack).
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const inclusive = new Map<string, number>();
const walk = (node: ProfileNode, onStack: Set<string>): number => {
  let hits = node.hitCount;
  const key = `${node.callFrame.functionName || "(anonymous)"} ${node.callFrame.url.split("/").pop() ?? ""}:${node.callFrame.lineNumber}`;
  const fresh = !onStack.has(key);
  if (fresh) onStack.add(key);
  for (const child of node.children ?? []) {
    const next = byId.get(child);
    if (next !== undefined) hits += walk(next, onStack);
  }
  if (fresh) {
    onStack.delete(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + hits);
  }
  return hits;
};
const root = profile.nodes[0];
if (root !== undefined) walk(root, new Set());
console.log("--- total time, gateway functions");
const own = [...inclusive.entries()].filter(([key]) => key.includes("index.js"));
for (const [key, hits] of own.sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${((100 * hits) / total).toFixed(1).padStart(5)} % ${key}`);
killGroup(sim);
killGroup(workerd);
process.exit(0);
