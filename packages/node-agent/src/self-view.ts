import { z } from "zod";
import type { NodeConnection } from "./connection";
import { gatewayPath } from "./enroll";
import { describeError, type Logger } from "./log";

export const SELF_VIEW_POLL_MS = 10_000;

/** The part of `GET /nodes/me` the agent reads; the gateway may send more. */
export const SelfViewSchema = z.looseObject({
  id: z.string(),
  state: z.enum(["healthy", "suspect", "down", "draining", "ejected", "disconnected"]),
  stateReason: z.string().nullish(),
  stateSince: z.union([z.string(), z.number()]).nullish(),
  geoFlag: z.unknown().optional(),
});
export type SelfView = z.infer<typeof SelfViewSchema>;

const TROUBLED: ReadonlySet<SelfView["state"]> = new Set(["suspect", "down", "ejected"]);

export interface SelfViewChange {
  level: "warn" | "info";
  message: string;
}

function hasGeoFlag(view: SelfView | undefined): boolean {
  return view?.geoFlag !== undefined && view.geoFlag !== null && view.geoFlag !== false;
}

function describeState(view: SelfView): string {
  const reason = view.stateReason ? ` (${view.stateReason})` : "";
  const since = view.stateSince === undefined || view.stateSince === null ? "" : ` since ${String(view.stateSince)}`;
  return `${view.state}${reason}${since}`;
}

/**
 * What an operator should hear about a new self-view, compared with the previous one: a warning
 * when the node turns suspect, down or ejected or gets a geo flag, an info line when it recovers.
 */
export function selfViewChanges(previous: SelfView | undefined, current: SelfView): SelfViewChange[] {
  const changes: SelfViewChange[] = [];
  const wasTroubled = previous !== undefined && TROUBLED.has(previous.state);
  if (TROUBLED.has(current.state) && previous?.state !== current.state) {
    changes.push({ level: "warn", message: `the gateway sees this node as ${describeState(current)}` });
  } else if (wasTroubled && !TROUBLED.has(current.state)) {
    changes.push({ level: "info", message: `the gateway sees this node as ${describeState(current)} again` });
  }
  if (hasGeoFlag(current) && !hasGeoFlag(previous)) {
    changes.push({ level: "warn", message: `the gateway flagged this node's location: ${JSON.stringify(current.geoFlag)}` });
  } else if (!hasGeoFlag(current) && hasGeoFlag(previous)) {
    changes.push({ level: "info", message: "the gateway cleared this node's location flag" });
  }
  return changes;
}

export interface SelfViewWatchOptions {
  gatewayUrl: string;
  credential: string;
  logger: Logger;
  intervalMs?: number;
}

/**
 * Polls `GET /nodes/me` every 10 s while the connection is welcomed and logs state changes the
 * operator should know of. A 404 (a gateway without the endpoint) stops the polling quietly.
 * Returns a function that stops watching.
 */
export function watchSelfView(connection: NodeConnection, options: SelfViewWatchOptions): () => void {
  const url = gatewayPath(options.gatewayUrl, "/nodes/me");
  const intervalMs = options.intervalMs ?? SELF_VIEW_POLL_MS;
  const log = options.logger;
  let previous: SelfView | undefined;
  let timer: NodeJS.Timeout | undefined;
  let unsupported = false;
  let failing = false;
  /** Bumped by stop(), so a poll in flight when the node reconnects cannot start a second loop. */
  let generation = 0;

  const poll = async (): Promise<void> => {
    let response: Response;
    try {
      response = await fetch(url, { headers: { authorization: `Bearer ${options.credential}` }, signal: AbortSignal.timeout(intervalMs) });
    } catch (error) {
      if (!failing) log.info(`could not read ${url}: ${describeError(error)}`);
      failing = true;
      return;
    }
    if (response.status === 404) {
      await response.body?.cancel();
      unsupported = true;
      stop();
      return;
    }
    const parsed = response.ok ? SelfViewSchema.safeParse(await response.json().catch(() => undefined)) : undefined;
    if (parsed === undefined || !parsed.success) {
      if (!response.bodyUsed) await response.body?.cancel();
      if (!failing) log.info(`${url} answered HTTP ${response.status}${parsed ? " with an unexpected body" : ""}`);
      failing = true;
      return;
    }
    failing = false;
    for (const change of selfViewChanges(previous, parsed.data)) log[change.level](change.message);
    previous = parsed.data;
  };
  const schedule = (): void => {
    const mine = generation;
    timer = setTimeout(() => {
      poll()
        .catch((error: unknown) => log.error(`self-view poll failed: ${describeError(error)}`))
        .finally(() => {
          if (mine === generation && !unsupported) schedule();
        });
    }, intervalMs);
    timer.unref();
  };
  const start = (): void => {
    if (unsupported || timer !== undefined) return;
    schedule();
  };
  const stop = (): void => {
    generation++;
    clearTimeout(timer);
    timer = undefined;
  };
  connection.on("connected", start);
  connection.on("disconnected", stop);
  return () => {
    stop();
    unsupported = true;
    connection.off("connected", start);
    connection.off("disconnected", stop);
  };
}
