import type { CredentialClaims, NodeRecord } from "@meridian/protocol";
import type { ArrivalStats } from "@meridian/routing";

/** Per-socket state, kept in the socket attachment so it survives hibernation. */
export interface NodeSocketState {
  /** Marks an attachment written by this version of the hub (see readState). */
  v: 2;
  claims: CredentialClaims;
  /** host[:port] the node reached the gateway at: its endpoint may not point there. */
  gatewayHost: string;
  /** This node's forwarded-request signing key, sent in the welcome. */
  requestKey: string;
  acceptedAt: number;
  lastFrameAt: number;
  /** Null until a valid hello arrives. */
  record: NodeRecord | null;
  heartbeatMs: number;
  /** Load as last sent to the Directory: steps are measured from here, so slow drift still arrives. */
  pushedLoad: number;
  /** Set by the gateway when the socket arrived far from the enrolled region. */
  geoFlag?: { colo: string; km: number };
  /** Liveness bookkeeping across sweeps (see stepLiveness). */
  goodChecks: number;
  recentDowns: number[];
  /** The failure detector's view of this node's frame gaps; null until hello. */
  arrivals: ArrivalStats | null;
  /**
   * A newer connection of the same node said hello: this socket is closed and every frame it
   * still sends is ignored. Set once, so a storm of hellos closes each socket at most once.
   */
  replaced: boolean;
}

/**
 * A node's WebSocket with typed state, in the manner of partyserver's Connection: `state`
 * reads the attachment (checked, not cast), `setState` writes it back. Wrappers are cheap and
 * made per event; the attachment is the only copy that survives hibernation.
 */
export class NodeSocket {
  private cached: NodeSocketState | null | undefined;

  constructor(readonly ws: WebSocket) {}

  get state(): NodeSocketState | null {
    if (this.cached === undefined) this.cached = readState(this.ws.deserializeAttachment());
    return this.cached;
  }

  setState(next: NodeSocketState): void {
    this.cached = next;
    this.ws.serializeAttachment(next);
  }

  /** Sends a frame; false when the peer is already gone. */
  send(frame: string): boolean {
    try {
      this.ws.send(frame);
      return true;
    } catch {
      return false;
    }
  }

  close(code: number, reason: string): void {
    try {
      this.ws.close(code, reason.slice(0, 120));
    } catch {
      // Already closed.
    }
  }
}

/**
 * The attachment, when it is one this hub wrote. Attachments come only from our own
 * serializeAttachment, so a marker and the identity fields are checked rather than the whole
 * shape parsed on every frame (heartbeats are the hub's hot path).
 */
export function readState(raw: unknown): NodeSocketState | null {
  if (typeof raw !== "object" || raw === null) return null;
  if (!("v" in raw) || raw.v !== 2 || !("claims" in raw) || typeof raw.claims !== "object" || raw.claims === null) return null;
  if (!("id" in raw.claims) || typeof raw.claims.id !== "string" || !("record" in raw) || !("replaced" in raw)) return null;
  return raw as NodeSocketState;
}
