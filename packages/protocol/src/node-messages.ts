import { z } from "zod";
import { GpuHardwareSchema, HotspotTierSchema, ModelListSchema, NodeIdSchema, NodeKindSchema } from "./common";
import { safeText } from "./text";

/** Protocol version spoken by this gateway; a hello with another version is refused. */
export const PROTOCOL_VERSION = 1;

/** Largest WebSocket frame a node may send; larger frames close the socket with 4413. */
export const MAX_NODE_FRAME_BYTES = 16 * 1024;

/** Liveness frames answered by the hub without waking it (hibernation auto-response). */
export const PING_FRAME = "ping";
export const PONG_FRAME = "pong";

export const HEARTBEAT_MS_DEFAULT = 1000;
export const HEARTBEAT_MS_MIN = 250;
export const HEARTBEAT_MS_MAX = 10_000;
/** A hello must arrive this soon after the upgrade or the socket is closed with 4408. */
export const HELLO_TIMEOUT_MS = 5000;

/** Close codes the gateway uses (4000 + the nearest HTTP status, so they read naturally). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  invalidMessage: 4400,
  identityMismatch: 4403,
  /** The hello's endpoint breaks the endpoint rules (see endpoint.ts). */
  endpointRefused: 4422,
  helloTimeout: 4408,
  replaced: 4409,
  frameTooLarge: 4413,
  unsupportedProtocol: 4426,
  /** The node's credential was revoked or moved to another region. */
  revoked: 4401,
  /** Too many connects of one node id in a short window. */
  rateLimited: 4429,
  internalError: 4500,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

// ---- node -> gateway -------------------------------------------------------------------

export const HelloSchema = z.strictObject({
  type: z.literal("hello"),
  protocol: z.int(),
  node: NodeIdSchema,
  kind: NodeKindSchema,
  gpu: GpuHardwareSchema.optional(),
  capacity: z.int().min(1).max(100_000),
  /** Base URL where the node serves client traffic; the gateway appends the client path. */
  endpoint: z.url({ protocol: /^https?$/ }).max(2048),
  heartbeatMs: z.int().min(HEARTBEAT_MS_MIN).max(HEARTBEAT_MS_MAX).default(HEARTBEAT_MS_DEFAULT),
  agent: safeText(z.string().max(100)).optional(),
  /** GPU nodes: the models served (OpenAI model ids); the enrollment may bound them. */
  models: ModelListSchema.optional(),
});
export type Hello = z.infer<typeof HelloSchema>;

export const HeartbeatSchema = z.strictObject({
  type: z.literal("heartbeat"),
  seq: z.int().min(0),
  /** Utilisation 0..1 (GPU busy share, or hotspot airtime). */
  load: z.number().min(0).max(1),
  /** Requests being served right now. */
  inFlight: z.int().min(0),
  /** Request slots still free; 0 means the node takes no new work. */
  free: z.int().min(0),
  /** Hotspots: measured throughput tier (capped by the enrolled backhaul) and attached users. */
  tier: HotspotTierSchema.optional(),
  users: z.int().min(0).max(1_000_000).optional(),
  /** Carrier backbone nodes: congestion 0 (idle) .. 1 (saturated). */
  congestion: z.number().min(0).max(1).optional(),
  /** GPU nodes: requests waiting for a generation slot (admitted but not yet generating). */
  queue: z.int().min(0).max(1_000_000).optional(),
  /** GPU nodes: tokens generated per second over the last few seconds (all requests together). */
  tokensPerSecond: z.number().min(0).max(10_000_000).optional(),
  /** GPU nodes: the models served now, when they changed since the hello (a model loaded or unloaded). */
  models: ModelListSchema.optional(),
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

export const DrainSchema = z.strictObject({
  type: z.literal("drain"),
  reason: safeText(z.string().max(200)).optional(),
});
export type Drain = z.infer<typeof DrainSchema>;

export const NodeMessageSchema = z.discriminatedUnion("type", [HelloSchema, HeartbeatSchema, DrainSchema]);
export type NodeMessage = z.infer<typeof NodeMessageSchema>;

// ---- gateway -> node -------------------------------------------------------------------

export const WelcomeSchema = z.strictObject({
  type: z.literal("welcome"),
  node: NodeIdSchema,
  region: z.string(),
  heartbeatMs: z.int(),
  /** Liveness frame to send every heartbeatMs between heartbeats; answered with "pong". */
  ping: z.literal(PING_FRAME),
  /**
   * Base64url HMAC key (32 bytes) of this node's forwarded-request signatures (see
   * request-signature.ts): the node refuses requests not signed with it.
   */
  requestKey: z.string().regex(/^[A-Za-z0-9_-]{43,}$/),
});
export type Welcome = z.infer<typeof WelcomeSchema>;

export const GatewayErrorSchema = z.strictObject({
  type: z.literal("error"),
  code: z.string(),
  message: z.string(),
});
export type GatewayError = z.infer<typeof GatewayErrorSchema>;

/** Sent when an operator asks the node to drain; the node answers with a drain message. */
export const DrainCommandSchema = z.strictObject({
  type: z.literal("command"),
  command: z.literal("drain"),
});

export const GatewayMessageSchema = z.discriminatedUnion("type", [
  WelcomeSchema,
  GatewayErrorSchema,
  DrainCommandSchema,
]);
export type GatewayMessage = z.infer<typeof GatewayMessageSchema>;
