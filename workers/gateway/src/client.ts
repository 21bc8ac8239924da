import {
  NodeKindSchema,
  OPENAI_BODY_PATHS,
  PartnerIdSchema,
  RequirementsSchema,
  impliesGpu,
  isSteering,
  locateClient,
  type ClientLocation,
  type LocatedClient,
  type Requirements,
  type Steering,
} from "@meridian/protocol";
import { getRegion, greatCircleKm } from "@meridian/regions";
import type { z } from "zod";
import { HttpError } from "./errors";
import { pathAndQuery, type ReadBody } from "./proxy";

export interface ResolvedClient extends LocatedClient {
  source: "cf" | "dev-headers";
}

/**
 * Everything the gateway reads from a client request, read once: where the client is, what
 * it needs, and which carrier subscriber (if any) it is. Routing, refusals and `/route`'s
 * explanation all work from this one value.
 */
export interface ClientRequest extends ResolvedClient {
  requirements: Requirements;
  /** x-meridian-residency, when the request narrows where it may be served. */
  residency: string | undefined;
  /** x-meridian-carrier: the partner whose subscriber sends this, or undefined. */
  carrier: string | undefined;
  /** The carrier subscriber's key (its place on the offload dial); set only with `carrier`. */
  subscriber: string | undefined;
  /** "/v1/x?y" as the node should see it. */
  path: string;
  /** x-meridian-steer (default latency). */
  steer: Steering;
  /** x-meridian-affinity, else the body's `user` or `prompt_cache_key`: keeps a session on one node. */
  affinityKey: string | undefined;
  /** The OpenAI body asked for a stream (`"stream": true`): the first-byte deadline applies. */
  stream: boolean;
  /** The body as read for routing; the proxy forwards this and never the consumed original. */
  body: ReadBody;
}

export type { ReadBody } from "./proxy";

/** OpenAI bodies up to this size are read for `model`, `user`, `stream`; larger ones route without them. */
export const INSPECTED_BODY_BYTES = 256 * 1024;
/** Longest affinity key kept (x-meridian-affinity, `user`, `prompt_cache_key`). */
export const MAX_AFFINITY_KEY = 256;

export async function readClientRequest(request: Request, env: Env): Promise<ClientRequest> {
  const headers = request.headers;
  const carrier = parseCarrier(headers);
  const path = pathAndQuery(request.url);
  const pathname = path.split("?", 1)[0] ?? path;
  const requirements = parseRequirements(headers);
  const maxPrice = parseMaxPrice(headers);
  if (maxPrice !== undefined) requirements.maxPrice = maxPrice;
  // OpenAI paths mean a GPU node unless a header says otherwise (carrier traffic has its own kinds).
  if (requirements.kind === undefined && carrier === undefined && impliesGpu(pathname)) requirements.kind = "gpu";
  const read = request.method === "POST" && OPENAI_BODY_PATHS.has(pathname) ? await readOpenAiBody(request) : { body: { kind: "untouched" as const }, fields: NO_FIELDS };
  if (read.fields.model !== undefined) requirements.model = read.fields.model;
  return {
    ...resolveClient(request, env),
    requirements,
    residency: parseResidency(headers),
    carrier,
    subscriber: carrier === undefined ? undefined : subscriberKey(request),
    path,
    steer: parseSteer(headers),
    affinityKey: parseAffinity(headers) ?? read.fields.affinityKey,
    stream: read.fields.stream,
    body: read.body,
  };
}

interface BodyFields {
  model: string | undefined;
  affinityKey: string | undefined;
  stream: boolean;
}
const NO_FIELDS: BodyFields = { model: undefined, affinityKey: undefined, stream: false };

/**
 * Reads an OpenAI JSON body up to INSPECTED_BODY_BYTES for the fields routing needs. A body
 * declared larger is left untouched; one without a length that runs past the cap is passed on
 * as a stream (what was read, then the rest), so streaming uploads keep streaming.
 */
export async function readOpenAiBody(request: Request): Promise<{ body: ReadBody; fields: BodyFields }> {
  const declared = request.headers.get("content-length");
  if (request.body === null) return { body: { kind: "untouched" }, fields: NO_FIELDS };
  if (declared !== null && !(Number(declared) <= INSPECTED_BODY_BYTES)) return { body: { kind: "untouched" }, fields: NO_FIELDS };
  if (declared !== null) {
    // A declared length within the cap: one native read, no JavaScript per chunk.
    const bytes = new Uint8Array(await request.arrayBuffer());
    return { body: { kind: "buffered", bytes }, fields: bodyFields(bytes) };
  }
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size > INSPECTED_BODY_BYTES) return { body: { kind: "stream", stream: resumed(chunks, reader) }, fields: NO_FIELDS };
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return { body: { kind: "buffered", bytes }, fields: bodyFields(bytes) };
}

/** The chunks already read, then the rest of the reader, as one stream. */
function resumed(chunks: Uint8Array[], reader: ReadableStreamDefaultReader<Uint8Array>): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const held = chunks[next];
      if (held !== undefined) {
        chunks[next++] = new Uint8Array(0);
        controller.enqueue(held);
        return;
      }
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

const utf8 = new TextDecoder();

/** `model`, `user` / `prompt_cache_key` and `stream` of a JSON body; anything else is the node's business. */
function bodyFields(bytes: Uint8Array): BodyFields {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(bytes));
  } catch {
    // Not JSON: the node refuses it in its own words; routing goes on without the fields.
    return NO_FIELDS;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return NO_FIELDS;
  const model = "model" in json && typeof json.model === "string" && json.model.length > 0 ? json.model.slice(0, 256) : undefined;
  const cacheKey = "prompt_cache_key" in json && typeof json.prompt_cache_key === "string" ? json.prompt_cache_key : undefined;
  const user = "user" in json && typeof json.user === "string" ? json.user : undefined;
  const key = cacheKey ?? user;
  return { model, affinityKey: key === undefined || key.length === 0 ? undefined : key.slice(0, MAX_AFFINITY_KEY), stream: "stream" in json && json.stream === true };
}

/** x-meridian-steer: latency (default), cost or balanced. */
export function parseSteer(headers: Headers): Steering {
  const raw = headers.get("x-meridian-steer");
  if (raw === null) return "latency";
  const value = raw.trim().toLowerCase();
  if (!isSteering(value)) throw new HttpError(400, "invalid_requirements", "x-meridian-steer: latency, cost or balanced");
  return value;
}

/** x-meridian-max-price: the most a request may be served at, USD per GPU-hour. */
export function parseMaxPrice(headers: Headers): number | undefined {
  const raw = headers.get("x-meridian-max-price");
  if (raw === null) return undefined;
  const value = raw.trim() === "" ? Number.NaN : Number(raw);
  if (!(value >= 0 && value <= 1000)) throw new HttpError(400, "invalid_requirements", "x-meridian-max-price: USD per GPU-hour, 0 to 1000");
  return value;
}

/** x-meridian-affinity: an opaque session key. */
export function parseAffinity(headers: Headers): string | undefined {
  const raw = headers.get("x-meridian-affinity");
  if (raw === null || raw.length === 0) return undefined;
  if (raw.length > MAX_AFFINITY_KEY) throw new HttpError(400, "invalid_requirements", `x-meridian-affinity: at most ${MAX_AFFINITY_KEY} characters`);
  return raw;
}

export { pathAndQuery } from "./proxy";

export const DEV_GEO_HEADERS = ["x-client-lat", "x-client-lon", "x-client-country", "x-client-subdivision"] as const;

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue === undefined ? "invalid" : `${issue.path.join(".") || "value"}: ${issue.message}`;
}

/**
 * Where the client is and how policy judges it (see locateClient: a known country is never
 * dropped, sanctioned territories win over geo-IP's country, unknown is "XX"). Production
 * trusts only request.cf; the x-client-* headers count only when DEV_TRUST_CLIENT_GEO is
 * "true" (local runs), or anyone could dodge export control.
 */
export function resolveClient(request: Request, env: Env): ResolvedClient {
  if (env.DEV_TRUST_CLIENT_GEO === "true" && DEV_GEO_HEADERS.some((h) => request.headers.has(h))) {
    const parsed = clientLocation(
      request.headers.get("x-client-lat"),
      request.headers.get("x-client-lon"),
      request.headers.get("x-client-country")?.toUpperCase(),
      request.headers.get("x-client-subdivision")?.toUpperCase(),
    );
    if (typeof parsed === "string") throw new HttpError(400, "invalid_client_geo", `x-client-* headers: ${parsed}`);
    return { ...locateClient({ latitude: parsed.lat, longitude: parsed.lon, country: parsed.country, regionCode: parsed.subdivision }), source: "dev-headers" };
  }
  const cf = request.cf;
  return { ...locateClient(cf === undefined ? null : { country: cf.country, regionCode: cf.regionCode, latitude: cf.latitude, longitude: cf.longitude }), source: "cf" };
}

const COUNTRY = /^[A-Z]{2}$|^T1$/;
const SUBDIVISION = /^[A-Z]{2}-[A-Z0-9]{1,3}$/;

/**
 * The same rules as ClientLocationSchema, checked by hand: this runs on every request, and
 * a schema parse there costs more than the routing decision. The schema stays the contract
 * (a property test keeps the two in agreement; unlike zod's coercion, an empty value is missing).
 */
export function clientLocation(latRaw: string | number | null, lonRaw: string | number | null, country: string | undefined, subdivision: string | undefined): ClientLocation | string {
  // An empty header is missing, not 0 (which a bare Number() would make of it).
  const toNumber = (raw: string | number | null) => (raw === null || (typeof raw === "string" && raw.trim() === "") ? Number.NaN : Number(raw));
  const lat = toNumber(latRaw);
  const lon = toNumber(lonRaw);
  if (!(lat >= -90 && lat <= 90)) return "lat: a number from -90 to 90 is required";
  if (!(lon >= -180 && lon <= 180)) return "lon: a number from -180 to 180 is required";
  if (country && !COUNTRY.test(country)) return "country: ISO 3166-1 alpha-2 code (or T1)";
  if (subdivision && !SUBDIVISION.test(subdivision)) return "subdivision: ISO 3166-2 code such as UA-43";
  return { lat, lon, ...(country ? { country } : {}), ...(subdivision ? { subdivision } : {}) };
}

/** Request requirements from x-meridian-kind, x-meridian-gpu and x-meridian-min-vram-gb. */
export function parseRequirements(headers: Headers): Requirements {
  const raw: Record<string, string> = {};
  const kind = headers.get("x-meridian-kind");
  const gpu = headers.get("x-meridian-gpu");
  const vram = headers.get("x-meridian-min-vram-gb");
  // The common cases, no requirement or only a kind, skip schema work on the hot path.
  if (gpu === null && vram === null) {
    if (kind === null) return {};
    const wanted = kind.trim().toLowerCase();
    const named = NodeKindSchema.options.find((k) => k === wanted);
    if (named !== undefined) return { kind: named };
  }
  if (kind !== null) raw.kind = kind.trim().toLowerCase();
  if (gpu !== null) raw.gpuClass = gpu.trim().toLowerCase();
  if (vram !== null) raw.minVramGb = vram.trim();
  const parsed = RequirementsSchema.safeParse(raw);
  if (!parsed.success) {
    const header = { kind: "x-meridian-kind", gpuClass: "x-meridian-gpu", minVramGb: "x-meridian-min-vram-gb" };
    const issue = parsed.error.issues[0];
    const field = issue?.path[0];
    const name = typeof field === "string" && field in header ? header[field as keyof typeof header] : "x-meridian-*";
    throw new HttpError(400, "invalid_requirements", `${name}: ${issue?.message ?? "invalid"}`);
  }
  if (parsed.data.kind === "hotspot" && (parsed.data.gpuClass !== undefined || parsed.data.minVramGb !== undefined)) {
    throw new HttpError(400, "invalid_requirements", "x-meridian-gpu and x-meridian-min-vram-gb need x-meridian-kind: gpu");
  }
  return parsed.data;
}

/** x-meridian-residency: a residency tag such as "eu"; the live policy must enforce it. */
export function parseResidency(headers: Headers): string | undefined {
  const raw = headers.get("x-meridian-residency");
  if (raw === null) return undefined;
  const tag = raw.trim().toLowerCase();
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(tag)) throw new HttpError(400, "invalid_requirements", "x-meridian-residency: a lowercase tag such as eu");
  return tag;
}

/** x-meridian-carrier: the carrier partner whose subscriber sends this request. */
export function parseCarrier(headers: Headers): string | undefined {
  const raw = headers.get("x-meridian-carrier");
  if (raw === null) return undefined;
  const parsed = PartnerIdSchema.safeParse(raw.trim().toLowerCase());
  if (!parsed.success) throw new HttpError(400, "invalid_carrier", `x-meridian-carrier: ${firstIssue(parsed.error)}`);
  return parsed.data;
}

/**
 * Who the subscriber is, for their place on the offload dial: x-meridian-subscriber (an opaque
 * id the carrier sets), else the client IP. Stable per subscriber, so decisions do not flap.
 */
export function subscriberKey(request: Request): string {
  const explicit = request.headers.get("x-meridian-subscriber");
  if (explicit !== null && explicit.length > 0) {
    if (explicit.length > 128) throw new HttpError(400, "invalid_subscriber", "x-meridian-subscriber: at most 128 characters");
    return explicit;
  }
  return request.headers.get("cf-connecting-ip") ?? "anonymous";
}

/** A node socket arriving at a colo this far from the node's enrolled region is flagged. */
export const GEO_FLAG_KM = 2000;

/**
 * The Cloudflare colo a node's socket arrived at (request.cf.colo, an IATA code), or in local
 * runs (DEV_TRUST_CLIENT_GEO) only the x-meridian-dev-colo header; flagged when far from the
 * enrolled region.
 * A colo the catalog does not know cannot be judged and is not flagged.
 */
export function geoFlagOf(request: Request, env: Env, enrolledRegion: string): { colo: string; km: number } | null {
  // Local runs get a placeholder request.cf (wrangler dev cannot fetch the real one), so
  // there only the dev header counts.
  const dev = env.DEV_TRUST_CLIENT_GEO === "true";
  const raw = dev ? request.headers.get("x-meridian-dev-colo") : typeof request.cf?.colo === "string" ? request.cf.colo : null;
  const colo = (raw ?? "").trim().toLowerCase();
  const arrived = getRegion(colo);
  const enrolled = getRegion(enrolledRegion);
  if (arrived === undefined || enrolled === undefined) return null;
  const km = Math.round(greatCircleKm(arrived.lat, arrived.lon, enrolled.lat, enrolled.lon));
  return km > GEO_FLAG_KM ? { colo, km } : null;
}
