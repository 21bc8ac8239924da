import { NodeConnection } from "../connection";
import { enrollNode, joinWithToken } from "../enroll";
import { createLogger, describeError } from "../log";
import { RequestVerifier } from "../request-auth";
import { watchSelfView } from "../self-view";
import { NodeWorkload, closeServer, createWorkloadServer, listen, reachableUrl } from "../workload";
import { onShutdownSignal, runMain } from "./common";
import { NODE_COMMAND, NODE_USAGE, parseNodeArgs } from "./node-args";

async function main(): Promise<void> {
  const parsed = parseNodeArgs(process.argv.slice(2), process.env);
  if (parsed.help) {
    process.stdout.write(NODE_USAGE);
    return;
  }
  const { gatewayUrl, host, port, publicUrl, heartbeatMs, tokenMs, drainTimeoutMs, source, settings } = parsed.config;
  const log = createLogger(`node ${settings.id}`);

  const workload = new NodeWorkload(
    {
      id: settings.id,
      kind: settings.kind,
      region: settings.region ?? "",
      gpu: settings.gpu,
      capacity: settings.capacity,
      ...(settings.partner ? { partner: settings.partner } : {}),
      ...(settings.maxMbps ? { maxMbps: settings.maxMbps } : {}),
    },
    { tokenMs, logger: log },
  );
  // Until the gateway's welcome brings the request key, the server refuses every request.
  const verifier = new RequestVerifier(settings.id, log);
  const server = createWorkloadServer(workload, verifier);
  const boundPort = await listen(server, host, port);
  const endpoint = publicUrl ?? reachableUrl(host, boundPort);
  log.info(`serving ${settings.kind} workload on ${reachableUrl(host, boundPort)}${publicUrl ? ` (advertised as ${publicUrl})` : ""}`);

  let credential: string;
  if (source.kind === "credential") credential = source.credential;
  else {
    const { id, kind, region = "", gpu, capacity, partner, maxMbps } = settings;
    const fields = { id, kind, region, gpu, capacity, ...(partner ? { partner } : {}), ...(maxMbps ? { maxMbps } : {}) };
    try {
      credential =
        source.kind === "join"
          ? await joinWithToken(gatewayUrl, source.joinToken, { ...fields, endpoint })
          : await enrollNode(gatewayUrl, source.adminToken, fields);
    } catch (error) {
      await closeServer(server);
      throw error;
    }
    const how = source.kind === "join" ? "joined with a join token" : "enrolled with the admin token";
    log.info(`${how} at ${gatewayUrl} (${kind}${gpu ? ` ${gpu.count}x ${gpu.class} ${gpu.vramGb} GB` : ""}, capacity ${capacity})`);
  }

  const connection = new NodeConnection({
    gatewayUrl,
    credential,
    node: settings.id,
    kind: settings.kind,
    gpu: settings.gpu,
    capacity: settings.capacity,
    // The models its workload answers for (meridian-<class> unless configured), so model routing finds it.
    ...(workload.servedModels.length > 0 ? { models: workload.servedModels } : {}),
    endpoint,
    heartbeatMs,
    load: workload,
    logger: log,
    drainTimeoutMs,
  });
  watchSelfView(connection, { gatewayUrl, credential, logger: log });

  let announcedReady = false;
  connection.on("connected", (welcome) => {
    verifier.useKey(welcome.requestKey);
    // The gateway is the authority on the region (whoami reports it).
    workload.identity.region = welcome.region;
    if (announcedReady) return;
    announcedReady = true;
    process.stdout.write(`READY ${JSON.stringify({ node: settings.id, endpoint, region: welcome.region })}\n`);
  });

  const exitAfterServerClosed = (code: number): void => {
    closeServer(server)
      .catch((error: unknown) => log.error(`closing the workload server failed: ${describeError(error)}`))
      .finally(() => process.exit(code));
  };
  connection.on("fatal", () => exitAfterServerClosed(1));
  // A drain asked for by the gateway ends the process too: the operator wants the node gone.
  connection.on("drained", () => exitAfterServerClosed(0));

  onShutdownSignal((signal) => {
    log.info(`${signal}: draining (send it again to exit at once)`);
    connection.drain(`${signal}`).catch((error: unknown) => {
      log.error(`drain failed: ${describeError(error)}`);
      exitAfterServerClosed(1);
    });
  });

  connection.start();
}

runMain(NODE_COMMAND, main);
