import { PartnerIdSchema, RequirementsSchema, locateClient, type ClientLocation, type LocatedClient, type Requirements } from "@meridian/protocol";
import { getRegion, greatCircleKm } from "@meridian/regions";
import type { z } from "zod";
import { HttpError } from "./errors";

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
}

export function readClientRequest(request: Request, env: Env): ClientRequest {
  const headers = request.headers;
  const carrier = parseCarrier(headers);
  return {
    ...resolveClient(request, env),
    requirements: parseRequirements(headers),
    residency: parseResidency(headers),
    carrier,
    subscriber: carrier === undefined ? undefined : subscriberKey(request),
    path: pathAndQuery(request.url),
  };
}

/** "/v1/x?y" of an absolute URL, without a full URL parse. */
export function pathAndQuery(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const hash = url.indexOf("#", start);
  return hash < 0 ? url.slice(start) : url.slice(start, hash);
}

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
  // The common case, no requirement at all, skips schema work on the hot path.
  if (kind === null && gpu === null && vram === null) return {};
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
