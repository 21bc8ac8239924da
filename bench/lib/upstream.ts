/**
 * The one upstream every target of the gateway part forwards to: the simulator's own node
 * workload (NodeWorkload, the same chat-completion answer), serving any /n/<id> on one port,
 * without the node's check of the gateway's request signature. The baselines (HAProxy, bare
 * workerd, Portkey) cannot sign, so the check is left out for all targets alike. The
 * simulated fleet advertises this server (--public-url), so the gateway routes here too.
 * Run as its own process: `tsx bench/lib/upstream.ts --port N`; prints READY. The offload
 * part serves its planned hotspot and backbone the same way, in process.
 */
import { createServer, type Server } from "node:http";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { NodeWorkload, RequestVerifier, createNodeHandler, fetchListener, modelsFor, type FetchHandler, type NodeIdentity } from "@meridian/node-agent";

/** Lets every request through: the benchmark's upstream serves signed and unsigned callers alike. */
class AcceptingVerifier extends RequestVerifier {
  override middleware(): (request: Request) => Promise<Response | undefined> {
    return async () => undefined;
  }
}

/** A GPU node that answers chat completions at once: the gateway part's upstream. */
const BENCH_GPU = { class: "h100", vramGb: 80, count: 8 } as const;
/** Every node of the upstream serves what a simulated node of its hardware advertises, so a chat may name its model. */
export const benchGpu = (id: string): NodeIdentity => ({ id, kind: "gpu", region: "nrt", capacity: 1_000_000, gpu: { ...BENCH_GPU }, models: modelsFor(BENCH_GPU) });

/** An HTTP server answering /n/<id>/... as the node `identityOf(id)` would, signature check left out. */
export function createUpstreamServer(identityOf: (id: string) => NodeIdentity): Server {
  const handlers = new Map<string, FetchHandler>();
  const handlerFor = (id: string): FetchHandler => {
    let handler = handlers.get(id);
    if (handler === undefined) {
      const workload = new NodeWorkload(identityOf(id), { tokenMs: 0 });
      handler = createNodeHandler(workload, { verifier: new AcceptingVerifier(id), base: `/n/${id}` });
      handlers.set(id, handler);
    }
    return handler;
  };
  const server = createServer(
    fetchListener(
      (request, context) => {
        const id = /^\/n\/([^/?]+)/.exec(context.target)?.[1];
        if (id === undefined) return Promise.resolve(new Response("not a node path", { status: 404 }));
        return handlerFor(id)(request, context);
      },
      (error) => console.error(`upstream: ${String(error)}`),
    ),
  );
  server.keepAliveTimeout = 60_000;
  return server;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({ options: { port: { type: "string" } } });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error("upstream: --port N (1..65535) is required");
    process.exit(2);
  }
  createUpstreamServer(benchGpu).listen(port, "127.0.0.1", () => console.log("READY"));
}
