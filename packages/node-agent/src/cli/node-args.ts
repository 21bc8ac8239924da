import {
  CredentialClaimsSchema,
  GPU_CLASSES,
  GpuClassSchema,
  HEARTBEAT_MS_DEFAULT,
  HEARTBEAT_MS_MAX,
  HEARTBEAT_MS_MIN,
  NodeIdSchema,
  NodeKindSchema,
  type CredentialClaims,
  type GpuHardware,
  type NodeKind,
} from "@meridian/protocol";
import { DRAIN_TIMEOUT_MS_DEFAULT } from "../connection";
import { GPU_VRAM_GB } from "../fleet";
import { DEFAULT_TOKEN_MS } from "../workload";
import { COMMON_OPTIONS, UsageError, formatUsage, httpUrlFlag, intFlag, nonEmpty, parseFlags, type Env } from "./common";

export const NODE_COMMAND = "meridian-node";
const COMMAND = NODE_COMMAND;
export const DEFAULT_GATEWAY = "http://127.0.0.1:8787";
const DEFAULT_CAPACITY = 16;

export const NODE_USAGE = formatUsage(
  `${COMMAND} [options]`,
  "Runs one simulated Meridian node: serves its workload over HTTP and keeps a socket to the gateway.\n" +
    "Use an existing credential, or enroll first with a join token from the fleet admin. Requests\n" +
    "to the workload must carry the gateway's signature (401 otherwise). On SIGINT/SIGTERM the node\n" +
    "drains (finishes in-flight requests) and exits 0; a second signal exits at once.\n" +
    'Prints `READY {"node":...,"endpoint":...}` on stdout once the gateway welcomes it; logs go to stderr.',
  [
    { flag: "--gateway URL", description: `gateway base URL (default ${DEFAULT_GATEWAY})` },
    { flag: "--credential TOKEN", description: "node credential (or env MERIDIAN_NODE_CREDENTIAL)" },
    { flag: "--join-token T", description: "enroll with this join token when no credential (or env MERIDIAN_JOIN_TOKEN)" },
    { flag: "--admin-token T", description: "admins only: enroll with the admin token instead (or env ADMIN_TOKEN)" },
    { flag: "--id ID", description: "node id, e.g. nrt-gpu-1 (required unless the credential carries it)" },
    { flag: "--kind gpu|hotspot|carrier", description: "node kind (required unless the credential carries it)" },
    { flag: "--partner ID", description: "carrier partner of a --kind carrier backbone node" },
    { flag: "--max-mbps N", description: "enrolled backhaul of a hotspot, Mbit/s (caps its tier and credited bytes)" },
    { flag: "--region ID", description: "region id, e.g. nrt (required to enroll or join)" },
    { flag: "--gpu CLASS", description: `GPU class for gpu nodes: ${GPU_CLASSES.join(", ")}` },
    { flag: "--vram GB", description: "memory per GPU in GB (default: the class's usual size)" },
    { flag: "--gpus N", description: "GPUs in the node (default 1)" },
    { flag: "--capacity N", description: `concurrent requests the node takes (default ${DEFAULT_CAPACITY})` },
    { flag: "--host HOST", description: "address the workload server binds (default 127.0.0.1)" },
    { flag: "--port N", description: "workload server port (default 0 = any free port)" },
    { flag: "--public-url URL", description: "endpoint advertised to the gateway (default http://host:port)" },
    {
      flag: "--heartbeat-ms N",
      description: `heartbeat interval, ${HEARTBEAT_MS_MIN}..${HEARTBEAT_MS_MAX} (default ${HEARTBEAT_MS_DEFAULT})`,
    },
    { flag: "--token-ms N", description: `delay between simulated tokens (default ${DEFAULT_TOKEN_MS})` },
    {
      flag: "--drain-timeout-ms N",
      description: `longest wait for in-flight requests when draining (default ${DRAIN_TIMEOUT_MS_DEFAULT})`,
    },
    { flag: "-h, --help", description: "show this help" },
  ],
);


export interface NodeSettings {
  id: string;
  kind: NodeKind;
  region: string | undefined;
  gpu: GpuHardware | undefined;
  capacity: number;
  partner: string | undefined;
  maxMbps: number | undefined;
}

/** How the agent gets its credential. */
export type CredentialSource =
  | { kind: "credential"; credential: string }
  | { kind: "join"; joinToken: string }
  | { kind: "admin"; adminToken: string };

export interface NodeCliConfig {
  gatewayUrl: string;
  host: string;
  port: number;
  publicUrl: string | undefined;
  heartbeatMs: number | undefined;
  tokenMs: number | undefined;
  drainTimeoutMs: number | undefined;
  source: CredentialSource;
  settings: NodeSettings;
}

/** Reads meridian-node's command line (pure: no I/O); throws UsageError for any bad value. */
export function parseNodeArgs(argv: readonly string[], env: Env): { help: true } | { help: false; config: NodeCliConfig } {
  const values = parseFlags(argv, {
    ...COMMON_OPTIONS,
    credential: { type: "string" },
    "join-token": { type: "string" },
    id: { type: "string" },
    kind: { type: "string" },
    region: { type: "string" },
    gpu: { type: "string" },
    vram: { type: "string" },
    gpus: { type: "string" },
    capacity: { type: "string" },
    partner: { type: "string" },
    "max-mbps": { type: "string" },
  } as const);
  if (values.help === true) return { help: true };

  const gatewayUrl = httpUrlFlag("gateway", values.gateway ?? DEFAULT_GATEWAY);
  const port = intFlag("port", values.port, 0, 65_535) ?? 0;
  const heartbeatMs = intFlag("heartbeat-ms", values["heartbeat-ms"], HEARTBEAT_MS_MIN, HEARTBEAT_MS_MAX);
  const tokenMs = intFlag("token-ms", values["token-ms"], 0, 60_000);
  const drainTimeoutMs = intFlag("drain-timeout-ms", values["drain-timeout-ms"], 0, 24 * 3_600_000);
  const publicUrl = values["public-url"] === undefined ? undefined : httpUrlFlag("public-url", values["public-url"]);

  const credential = nonEmpty(values.credential) ?? nonEmpty(env.MERIDIAN_NODE_CREDENTIAL);
  const settings = nodeSettings(values, credential === undefined ? undefined : credentialClaims(credential));
  if (values["join-token"] !== undefined && values["admin-token"] !== undefined) {
    throw new UsageError("give --join-token or --admin-token, not both");
  }
  let source: CredentialSource;
  if (credential !== undefined) source = { kind: "credential", credential };
  else {
    const joinToken = nonEmpty(values["join-token"]) ?? (values["admin-token"] === undefined ? nonEmpty(env.MERIDIAN_JOIN_TOKEN) : undefined);
    const adminToken = nonEmpty(values["admin-token"]) ?? nonEmpty(env.ADMIN_TOKEN);
    if (joinToken !== undefined) source = { kind: "join", joinToken };
    else if (adminToken !== undefined) source = { kind: "admin", adminToken };
    else throw new UsageError("give --join-token (or MERIDIAN_JOIN_TOKEN) from the fleet admin, or --credential (or MERIDIAN_NODE_CREDENTIAL)");
    if (settings.region === undefined) throw new UsageError("--region is required to enroll");
  }
  return {
    help: false,
    config: { gatewayUrl, host: values.host ?? "127.0.0.1", port, publicUrl, heartbeatMs, tokenMs, drainTimeoutMs, source, settings },
  };
}

/**
 * Reads the claims of a credential shaped `<base64url JSON claims>.<signature>`, only to
 * default --id/--kind/... from it; the gateway is what verifies it. Undefined for other shapes.
 */
export function credentialClaims(credential: string): CredentialClaims | undefined {
  for (const segment of credential.split(".")) {
    try {
      const parsed = CredentialClaimsSchema.safeParse(JSON.parse(Buffer.from(segment, "base64url").toString("utf8")));
      if (parsed.success) return parsed.data;
    } catch {
      // Not this segment.
    }
  }
  return undefined;
}

export function nodeSettings(
  values: Partial<Record<"id" | "kind" | "region" | "gpu" | "vram" | "gpus" | "capacity" | "partner" | "max-mbps", string>>,
  claims: CredentialClaims | undefined,
): NodeSettings {
  const id = values.id ?? claims?.id;
  if (id === undefined) throw new UsageError("--id is required");
  if (!NodeIdSchema.safeParse(id).success) {
    throw new UsageError(`--id "${id}" is invalid: 3-63 chars of a-z, 0-9 and '-', starting with a letter or digit`);
  }
  const kindValue = values.kind ?? claims?.kind;
  if (kindValue === undefined) throw new UsageError("--kind is required (gpu, hotspot or carrier)");
  const kind = NodeKindSchema.safeParse(kindValue);
  if (!kind.success) throw new UsageError(`--kind must be gpu, hotspot or carrier, got "${kindValue}"`);
  const partner = values.partner ?? claims?.partner;
  if ((kind.data === "carrier") !== (partner !== undefined)) throw new UsageError("--partner is required for --kind carrier and only for it");
  const maxMbps = intFlag("max-mbps", values["max-mbps"], 1, 100_000) ?? claims?.maxMbps;
  if (maxMbps !== undefined && kind.data !== "hotspot") throw new UsageError("--max-mbps only applies to --kind hotspot");

  let gpu: GpuHardware | undefined;
  if (kind.data === "gpu") {
    const classValue = values.gpu ?? claims?.gpu?.class;
    if (classValue === undefined) throw new UsageError("--gpu CLASS is required for gpu nodes");
    const gpuClass = GpuClassSchema.safeParse(classValue);
    if (!gpuClass.success) throw new UsageError(`--gpu must be one of ${GPU_CLASSES.join(", ")}, got "${classValue}"`);
    gpu = {
      class: gpuClass.data,
      vramGb: intFlag("vram", values.vram, 1, 1024) ?? claims?.gpu?.vramGb ?? GPU_VRAM_GB[gpuClass.data],
      count: intFlag("gpus", values.gpus, 1, 64) ?? claims?.gpu?.count ?? 1,
    };
  } else if (values.gpu !== undefined || values.vram !== undefined || values.gpus !== undefined) {
    throw new UsageError("--gpu, --vram and --gpus only apply to --kind gpu");
  }
  const capacity = intFlag("capacity", values.capacity, 1, 100_000) ?? claims?.capacity ?? DEFAULT_CAPACITY;
  return { id, kind: kind.data, region: values.region ?? claims?.region, gpu, capacity, partner, maxMbps };
}

