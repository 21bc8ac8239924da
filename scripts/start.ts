/**
 * `npm start`: the gateway on http://127.0.0.1:8787 with a simulated fleet in every region.
 * Flags: see START_USAGE (`npm start -- --help`).
 */
import { startSimulator, type SimulatorHandle } from "@meridian/node-agent";
import { UsageError, usageLine } from "@meridian/node-agent/cli";
import { ensureDemoTenant, ensureDevVars, startGateway } from "./dev-gateway";
import { START_COMMAND, START_USAGE, parseStartArgs, type StartConfig } from "./start-args";

let parsed: ReturnType<typeof parseStartArgs>;
try {
  parsed = parseStartArgs(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  console.error(usageLine(START_COMMAND, error));
  process.exit(2);
}
if (parsed.help) {
  process.stdout.write(START_USAGE);
  process.exit(0);
}
const { port, nodes, seed }: StartConfig = parsed.config;

const startedAt = performance.now();
const devVars = ensureDevVars();
console.log(`[start] ${devVars.created ? "created" : "using"} local secrets in ${devVars.path} (ADMIN_TOKEN for the admin API)`);
console.log(`[start] starting the gateway (wrangler dev, workerd + local Durable Objects) on port ${port}...`);
const gateway = await startGateway({ port });
console.log(`[start] gateway ready at ${gateway.url} in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
const demo = await ensureDemoTenant(gateway.url, devVars.secrets.ADMIN_TOKEN, devVars.path);
console.log(`[start] ${demo.created ? "created the demo tenant; its key is" : "demo tenant key"} DEMO_TENANT_KEY in ${devVars.path}`);

let fleet: SimulatorHandle | null = null;
if (nodes > 0) {
  fleet = await startSimulator({ gatewayUrl: gateway.url, adminToken: devVars.secrets.ADMIN_TOKEN, nodes, seed });
}
console.log(`
[start] ready in ${((performance.now() - startedAt) / 1000).toFixed(1)} s: ${fleet ? `${fleet.connectedCount()} simulated nodes connected` : "no simulated fleet"}
  export DEMO_TENANT_KEY=${demo.key}
  curl -s ${gateway.url}/route -H "authorization: Bearer $DEMO_TENANT_KEY" -H 'x-client-lat: 35.68' -H 'x-client-lon: 139.76' -H 'x-client-country: JP' -H 'x-meridian-gpu: h100'
  curl -s ${gateway.url}/v1/whoami -H "authorization: Bearer $DEMO_TENANT_KEY" -H 'x-client-lat: 48.85' -H 'x-client-lon: 2.35' -H 'x-client-country: FR'
  curl -sN ${gateway.url}/v1/chat/completions -H "authorization: Bearer $DEMO_TENANT_KEY" -H 'x-client-lat: 40.71' -H 'x-client-lon: -74.0' -H 'x-client-country: US' -H 'x-meridian-kind: gpu' \\
       -d '{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}'
  curl -s ${gateway.url}/admin/fleet -H "authorization: Bearer $(grep ^ADMIN_TOKEN .dev.vars | cut -d= -f2)"
  console: ${gateway.url}/console/ (sign in with ADMIN_TOKEN from .dev.vars)
  API reference: ${gateway.url}/docs/ (OpenAPI 3.1 at ${gateway.url}/openapi.json)
Ctrl-C drains the fleet and stops the gateway.`);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) process.exit(1);
  stopping = true;
  console.log("\n[start] draining the simulated fleet and stopping the gateway...");
  await fleet?.close({ drain: true });
  await gateway.stop();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown());
process.on("SIGTERM", () => void shutdown());
gateway.process.once("exit", (code) => {
  if (!stopping) {
    console.error(`[start] the gateway exited (${code}); stopping`);
    void fleet?.close({ drain: false }).then(() => process.exit(1));
  }
});
