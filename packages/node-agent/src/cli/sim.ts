import { createLogger, describeError } from "../log";
import { startSimulator, type SimulatorHandle } from "../simulator";
import { UsageError, onShutdownSignal, readDevVar, runMain } from "./common";
import { SIM_COMMAND, SIM_USAGE, parseSimArgs } from "./sim-args";

async function main(): Promise<void> {
  const parsed = parseSimArgs(process.argv.slice(2), process.env);
  if (parsed.help) {
    process.stdout.write(SIM_USAGE);
    return;
  }
  const config = parsed.config;
  const adminToken = config.adminToken ?? readDevVar("ADMIN_TOKEN");
  if (!adminToken) {
    throw new UsageError("no admin token: give --admin-token, set ADMIN_TOKEN, or put ADMIN_TOKEN in ./.dev.vars");
  }
  const { seed, chaosKillPct, chaosFreezePct, chaosAtS } = config;

  const log = createLogger("sim");
  const interrupted = new AbortController();
  let handle: SimulatorHandle | undefined;

  onShutdownSignal((signal) => {
    log.info(`${signal}: draining every node (send it again to exit at once)`);
    if (handle === undefined) {
      interrupted.abort(new Error(`interrupted by ${signal}`)); // the ramp stops and drains what it started
      return;
    }
    handle
      .close({ drain: true })
      .then(() => {
        log.info("all nodes drained");
        process.exit(0);
      })
      .catch((error: unknown) => {
        log.error(`shutdown failed: ${describeError(error)}`);
        process.exit(1);
      });
  });

  try {
    handle = await startSimulator({
      gatewayUrl: config.gatewayUrl,
      adminToken,
      nodes: config.nodes,
      seed,
      prefix: config.prefix,
      host: config.host,
      port: config.port,
      publicUrl: config.publicUrl,
      heartbeatMs: config.heartbeatMs,
      tokenMs: config.tokenMs,
      connectConcurrency: config.connectConcurrency,
      drainTimeoutMs: config.drainTimeoutMs,
      jitterMs: config.jitterMs,
      lossRate: config.lossRate,
      logger: log,
      nodeLogger: (id) => createLogger(`node ${id}`, { quietInfo: !config.verbose }),
      signal: interrupted.signal,
    });
  } catch (error) {
    if (interrupted.signal.aborted) {
      log.info("stopped during the ramp; nodes drained");
      process.exit(0);
    }
    throw error;
  }
  process.stdout.write(`READY ${JSON.stringify({ nodes: handle.nodes.length, connected: handle.connectedCount() })}\n`);
  if (chaosKillPct > 0 || chaosFreezePct > 0) {
    const fleet = handle;
    // unref: the timer alone must not keep the process alive (the sockets and server do).
    setTimeout(() => {
      const victims = fleet.pickChaosVictims(chaosKillPct, chaosFreezePct, seed);
      const at = Date.now();
      for (const id of victims.killed) fleet.kill(id);
      for (const id of victims.frozen) fleet.freeze(id);
      process.stdout.write(`CHAOS ${JSON.stringify({ killed: victims.killed, frozen: victims.frozen, at })}\n`);
      log.info(`chaos: killed ${victims.killed.length}, froze ${victims.frozen.length} node(s)`);
    }, chaosAtS * 1000).unref();
  }
}

runMain(SIM_COMMAND, main);
