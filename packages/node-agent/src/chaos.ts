import type { IncomingMessage, ServerResponse } from "node:http";
import { HEARTBEAT_MS_MAX } from "@meridian/protocol";
import type { Cancel, ConnectionRuntime, NodeConnection } from "./connection";

/**
 * Test-only faults for one node, kept out of the production agent: the simulator and the tests
 * wrap a node's connection (through its runtime) and its HTTP entry with a ChaosNode.
 *
 *   kill   like kill -9: the socket is cut without a close frame, nothing reconnects, every
 *          HTTP request (held ones too) gets its connection destroyed.
 *   freeze like SIGSTOP: timers and socket callbacks are held (no frame goes out, gateway
 *          frames wait) while the socket stays open; HTTP requests hang unanswered.
 *   thaw   like SIGCONT: what was held runs in arrival order, then everything flows again.
 *
 * Jitter and loss move or drop each ping/heartbeat, for failure-detector runs.
 */
export interface ChaosOptions {
  /** Each ping/heartbeat goes out at its nominal time plus a uniform offset in [-jitterMs, +jitterMs] (default 0). */
  jitterMs?: number;
  /** Probability (0..1) that a ping/heartbeat frame is silently skipped (default 0). */
  lossRate?: number;
  /** Injected for deterministic tests. */
  random?: () => number;
}

export type ChaosMode = "up" | "frozen" | "killed";

/** A node:http request handler. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** Throws when chaos options are out of range; returns them with defaults applied. */
export function validateChaosOptions(options: { jitterMs?: number; lossRate?: number }): { jitterMs: number; lossRate: number } {
  const jitterMs = options.jitterMs ?? 0;
  const lossRate = options.lossRate ?? 0;
  if (!Number.isFinite(jitterMs) || jitterMs < 0 || jitterMs > HEARTBEAT_MS_MAX) {
    throw new Error(`jitterMs must be a number in 0..${HEARTBEAT_MS_MAX}, got ${jitterMs}`);
  }
  if (!Number.isFinite(lossRate) || lossRate < 0 || lossRate > 1) {
    throw new Error(`lossRate must be a probability in 0..1, got ${lossRate}`);
  }
  return { jitterMs, lossRate };
}

interface HeldWork {
  run: () => void;
  cancelled: boolean;
}

export class ChaosNode {
  /** Pass to the node's NodeConnection (`runtime`). */
  readonly runtime: ConnectionRuntime;
  private readonly jitterMs: number;
  private readonly lossRate: number;
  private readonly random: () => number;
  private mode: ChaosMode = "up";
  private connection: NodeConnection | undefined;
  /** Connection callbacks that came while frozen, run on thaw in order. */
  private readonly heldWork: HeldWork[] = [];
  /** HTTP requests that came while frozen. */
  private readonly heldRequests: Array<{ req: IncomingMessage; serve: () => void }> = [];

  constructor(options: ChaosOptions = {}) {
    const { jitterMs, lossRate } = validateChaosOptions(options);
    this.jitterMs = jitterMs;
    this.lossRate = lossRate;
    this.random = options.random ?? Math.random;
    this.runtime = {
      schedule: (callback, ms) => this.schedule(callback, ms),
      deliver: (callback) => this.deliver({ run: callback, cancelled: false }),
      tickOffsetMs: () => (this.jitterMs > 0 ? (this.random() * 2 - 1) * this.jitterMs : 0),
      losesFrame: () => this.lossRate > 0 && this.random() < this.lossRate,
    };
  }

  get state(): ChaosMode {
    return this.mode;
  }

  /** The connection that kill() cuts (it must run on this.runtime). */
  attach(connection: NodeConnection): void {
    this.connection = connection;
  }

  /** Wraps the node's HTTP entry so that kill and freeze reach its requests. */
  http(next: HttpHandler): HttpHandler {
    const handle: HttpHandler = (req, res) => {
      if (this.mode === "killed") {
        req.socket.destroy(); // like a dead process: the client sees a connection error
        return;
      }
      if (this.mode === "frozen") {
        this.heldRequests.push({
          req,
          serve: () => {
            if (!res.destroyed && !req.socket.destroyed) handle(req, res);
          },
        });
        return;
      }
      next(req, res);
    };
    return handle;
  }

  kill(): void {
    if (this.mode === "killed") return;
    this.mode = "killed";
    for (const work of this.heldWork.splice(0)) work.cancelled = true;
    for (const held of this.heldRequests.splice(0)) held.req.socket.destroy();
    // Held callbacks are gone; what the cut itself causes (the close event) runs normally.
    this.connection?.terminate().catch(() => undefined);
  }

  freeze(): void {
    if (this.mode === "up") this.mode = "frozen";
  }

  thaw(): void {
    if (this.mode !== "frozen") return;
    this.mode = "up";
    for (const work of this.heldWork.splice(0)) if (!work.cancelled) work.run();
    for (const held of this.heldRequests.splice(0)) held.serve();
  }

  private schedule(callback: () => void, ms: number): Cancel {
    const work: HeldWork = { run: callback, cancelled: false };
    const timer = setTimeout(() => this.deliver(work), ms);
    return () => {
      work.cancelled = true;
      clearTimeout(timer);
    };
  }

  private deliver(work: HeldWork): void {
    if (work.cancelled) return;
    if (this.mode === "frozen") this.heldWork.push(work);
    else work.run();
  }
}
