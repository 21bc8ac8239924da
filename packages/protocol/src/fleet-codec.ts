import { isRegionId, REGIONS, regionIndex } from "@meridian/regions";
import { NodeHealthSchema, type NodeHealth } from "./api";
import { GPU_CLASSES, NodeKindSchema, type GpuClass, type GpuHardware, type NodeKind } from "./common";
import type { NodeRecord, NodeUpdate } from "./fleet";
import { fromBase64Url, toBase64Url } from "./request-signature";

/**
 * The binary form of what the fleet tree carries (Directory → replicas → colo caches →
 * isolates): a full snapshot or a delta, with the versions an isolate needs. About 20-30
 * bytes per node instead of ~320 as JSON:
 * - a string table per message (health reasons, partners, colos, endpoint patterns);
 * - ids front-coded against the previous id (a full snapshot is sent in id order, so the
 *   simulator's `sim-nrt-h100-12` costs ~4 bytes);
 * - an endpoint that embeds its node id (`https://<id>.nodes.example`) is a pattern reference;
 * - one flag varint says which optional fields are present and which fields differ from
 *   what they usually are (connectedAt = healthSince, free = capacity - inFlight, load as the
 *   agent computes it from inFlight), so a field at its default costs a bit;
 * - numbers are exact: integers and thousandths as varints, anything else as a float64; seq
 *   as a difference from the previous seq of the same region (hubs count per region).
 * The first byte is the format; a decoder refuses a format it does not know, and a node that
 * falls behind a format change asks again for a full copy in the format it knows.
 */
/** 2: adds models, price, queue depth and tokens per second (GPU nodes). */
export const FLEET_CODEC_FORMAT = 2;

export interface FleetVersions {
  /** A fresh id per primary instance: versions compare only within one epoch. */
  epoch: string;
  version: number;
  policyVersion: number;
  carriersVersion: number;
}

/** A full snapshot or the changes since a version, as the fleet tree carries them. */
export type FleetAnswer = (FleetVersions & { kind: "full"; nodes: NodeRecord[] }) | (FleetVersions & { kind: "delta"; updates: NodeUpdate[] });

export class FleetCodecError extends Error {}

const KINDS: readonly NodeKind[] = NodeKindSchema.options;
const HEALTHS: readonly NodeHealth[] = NodeHealthSchema.options;

// Flag bits, the common ones low so that most records need a one-byte flag varint.
const GONE = 1 << 0;
const HAS_GPU = 1 << 1;
const HAS_MAX_MBPS = 1 << 2;
const HAS_TIER = 1 << 3;
const HAS_USERS = 1 << 4;
const OWN_CONNECTED_AT = 1 << 5;
const HAS_RETURNED_AT = 1 << 6;
const OWN_FREE = 1 << 7;
const OWN_LOAD = 1 << 8;
const HAS_PARTNER = 1 << 9;
const HAS_CONGESTION = 1 << 10;
const HAS_GEO_FLAG = 1 << 11;
const HAS_MODELS = 1 << 12;
const HAS_PRICE = 1 << 13;
const HAS_QUEUE = 1 << 14;
const HAS_TOKENS_PER_SECOND = 1 << 15;
const HAS_CREDENTIAL = 1 << 16;
const KNOWN_FLAGS = (1 << 17) - 1;
/** A node's model list travels as one string-table entry (nodes of one kind share a list). */
const MODEL_SEPARATOR = "\n";
/** Credential ids are "<key id>_<random>": the key id is shared by most nodes (string table). */
const CREDENTIAL_ID = /^([A-Za-z0-9_-]{1,16})_([A-Za-z0-9-]+)$/;

/** The load an agent reports for `inFlight` of `capacity` (packages/node-agent workload). */
export function agentLoad(inFlight: number, capacity: number): number {
  return capacity > 0 ? Math.min(1, Math.round((inFlight / capacity) * 1000) / 1000) : 0;
}

// Numbers: a varint whose low 2 bits say how to read it. 0: an integer (zigzag), relative to a
// base where the field has one; 1: thousandths (zigzag); 2: a float64 follows (exact for anything).
const INT_LIMIT = 2 ** 50;
const TAG_INT = 0;
const TAG_MILLI = 1;
const TAG_FLOAT = 2;

class Writer {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private readonly text = new TextEncoder();

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.length++] = b;
  }

  /** A non-negative safe integer, 7 bits a byte. */
  uint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new FleetCodecError(`not a non-negative safe integer: ${n}`);
    this.room(8);
    let x = n;
    while (x >= 0x80) {
      this.buf[this.length++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    this.buf[this.length++] = x;
  }

  float(x: number): void {
    this.room(8);
    this.view.setFloat64(this.length, x, true);
    this.length += 8;
  }

  /** Exact for every number: an integer relative to `base`, thousandths, or a float64. */
  number(x: number, base = 0): void {
    const d = x - base;
    if (Number.isSafeInteger(x) && Number.isSafeInteger(base) && Math.abs(d) <= INT_LIMIT && !Object.is(x, -0)) {
      this.uint(zigzag(d) * 4 + TAG_INT);
      return;
    }
    const milli = Math.round(x * 1000);
    if (Math.abs(milli) <= INT_LIMIT && milli / 1000 === x && !Object.is(x, -0)) {
      this.uint(zigzag(milli) * 4 + TAG_MILLI);
      return;
    }
    this.uint(TAG_FLOAT);
    this.float(x);
  }

  string(s: string): void {
    const bytes = this.text.encode(s);
    this.uint(bytes.length);
    this.room(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  raw(bytes: Uint8Array): void {
    this.uint(bytes.length);
    this.room(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

const zigzag = (n: number) => (n >= 0 ? n * 2 : -n * 2 - 1);
const unzigzag = (u: number) => (u % 2 === 0 ? u / 2 : -(u + 1) / 2);

class Reader {
  at = 0;
  private readonly view: DataView;
  private readonly text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  byte(): number {
    const b = this.buf[this.at++];
    if (b === undefined) throw new FleetCodecError("truncated message");
    return b;
  }

  uint(): number {
    let x = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      x += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (!Number.isSafeInteger(x)) break;
        return x;
      }
      scale *= 0x80;
    }
    throw new FleetCodecError(`bad varint at byte ${this.at}`);
  }

  float(): number {
    if (this.at + 8 > this.buf.length) throw new FleetCodecError("truncated message");
    const x = this.view.getFloat64(this.at, true);
    this.at += 8;
    return x;
  }

  number(base = 0): number {
    const u = this.uint();
    const tag = u % 4;
    const value = (u - tag) / 4;
    if (tag === TAG_INT) return base + unzigzag(value);
    if (tag === TAG_MILLI) return unzigzag(value) / 1000;
    if (tag === TAG_FLOAT && value === 0) return this.float();
    throw new FleetCodecError(`bad number tag ${tag} at byte ${this.at}`);
  }

  count(limit: number, what: string): number {
    const n = this.uint();
    if (n > limit) throw new FleetCodecError(`${what}: ${n} exceeds ${limit}`);
    return n;
  }

  raw(): Uint8Array {
    const n = this.count(this.buf.length - this.at, "byte length");
    const bytes = this.buf.slice(this.at, this.at + n);
    this.at += n;
    return bytes;
  }

  string(): string {
    const n = this.count(this.buf.length - this.at, "string length");
    let s: string;
    try {
      s = this.text.decode(this.buf.subarray(this.at, this.at + n));
    } catch {
      throw new FleetCodecError(`invalid UTF-8 at byte ${this.at}`);
    }
    this.at += n;
    return s;
  }

  get done(): boolean {
    return this.at === this.buf.length;
  }
}

/** Interned strings and tuples of one message, numbered in order of first use. */
class Table<T> {
  readonly items: T[] = [];
  private readonly refs = new Map<string, number>();
  ref(key: string, item: T): number {
    let ref = this.refs.get(key);
    if (ref === undefined) {
      ref = this.items.push(item) - 1;
      this.refs.set(key, ref);
    }
    return ref;
  }
}

const sharedPrefix = (a: string, b: string) => {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
};

/** Encodes a full snapshot or a delta. Nodes and updates keep their order (send snapshots sorted by id: see sortedById). */
export function encodeFleetAnswer(answer: FleetAnswer): Uint8Array {
  const strings = new Table<string>();
  const hardware = new Table<GpuHardware>();
  const patterns = new Table<[number, number]>();
  const body = new Writer();
  const records: readonly NodeUpdate[] = answer.kind === "full" ? answer.nodes : answer.updates;
  const lastSeq = new Map<string, number>();
  let previousId = "";
  let baseTime = 0;
  for (const r of records) if (!("gone" in r) && Number.isSafeInteger(r.healthSince)) baseTime = Math.max(baseTime, r.healthSince);
  const str = (s: string) => strings.ref(s, s);

  for (const r of records) {
    const gone = "gone" in r;
    let flags = gone ? GONE : 0;
    if (!gone) {
      if (r.gpu !== undefined) flags |= HAS_GPU;
      if (r.maxMbps !== undefined) flags |= HAS_MAX_MBPS;
      if (r.tier !== undefined) flags |= HAS_TIER;
      if (r.users !== undefined) flags |= HAS_USERS;
      if (!Object.is(r.connectedAt, r.healthSince)) flags |= OWN_CONNECTED_AT;
      if (r.returnedAt !== undefined) flags |= HAS_RETURNED_AT;
      if (!Object.is(r.free, r.capacity - r.inFlight)) flags |= OWN_FREE;
      if (!Object.is(r.load, agentLoad(r.inFlight, r.capacity))) flags |= OWN_LOAD;
      if (r.partner !== undefined) flags |= HAS_PARTNER;
      if (r.congestion !== undefined) flags |= HAS_CONGESTION;
      if (r.geoFlag !== undefined) flags |= HAS_GEO_FLAG;
      if (r.models !== undefined) flags |= HAS_MODELS;
      if (r.pricePerGpuHour !== undefined) flags |= HAS_PRICE;
      if (r.queue !== undefined) flags |= HAS_QUEUE;
      if (r.tokensPerSecond !== undefined) flags |= HAS_TOKENS_PER_SECOND;
      if (r.credentialId !== undefined) flags |= HAS_CREDENTIAL;
    }
    body.uint(flags);
    const prefix = sharedPrefix(previousId, r.id);
    body.uint(prefix);
    body.string(r.id.slice(prefix));
    previousId = r.id;
    const region = regionIndex(r.region);
    body.uint(region + 1);
    if (region < 0) body.uint(str(r.region));
    const seqBase = lastSeq.get(r.region) ?? 0;
    body.number(r.seq, seqBase);
    lastSeq.set(r.region, r.seq);
    if (gone) continue;

    body.uint(KINDS.indexOf(r.kind) * HEALTHS.length + HEALTHS.indexOf(r.health));
    if (r.gpu !== undefined) body.uint(hardware.ref(`${r.gpu.class}/${r.gpu.vramGb}/${r.gpu.count}`, r.gpu));
    body.number(r.capacity);
    const at = r.endpoint.indexOf(r.id);
    if (at >= 0) {
      const pre = str(r.endpoint.slice(0, at));
      const post = str(r.endpoint.slice(at + r.id.length));
      body.uint(1 + patterns.ref(`${pre}/${post}`, [pre, post]));
    } else {
      body.uint(0);
      body.string(r.endpoint);
    }
    body.uint(str(r.healthReason));
    body.number(r.healthSince, baseTime);
    if (flags & OWN_CONNECTED_AT) body.number(r.connectedAt, r.healthSince);
    if (r.returnedAt !== undefined) body.number(r.returnedAt, r.healthSince);
    body.number(r.inFlight);
    if (flags & OWN_FREE) body.number(r.free);
    if (flags & OWN_LOAD) body.number(r.load);
    if (r.maxMbps !== undefined) body.number(r.maxMbps);
    if (r.tier !== undefined) body.number(r.tier);
    if (r.users !== undefined) body.number(r.users);
    if (r.partner !== undefined) body.uint(str(r.partner));
    if (r.congestion !== undefined) body.number(r.congestion);
    if (r.geoFlag !== undefined) {
      body.uint(str(r.geoFlag.colo));
      body.number(r.geoFlag.km);
    }
    if (r.models !== undefined) body.uint(str(r.models.join(MODEL_SEPARATOR)));
    if (r.pricePerGpuHour !== undefined) body.number(r.pricePerGpuHour);
    if (r.queue !== undefined) body.number(r.queue);
    if (r.tokensPerSecond !== undefined) body.number(r.tokensPerSecond);
    if (r.credentialId !== undefined) {
      // Key id from the string table; the random part as raw bytes when it is base64url.
      const parts = CREDENTIAL_ID.exec(r.credentialId);
      const key = parts?.[1];
      const random = parts?.[2];
      const rawRandom = random === undefined ? null : fromBase64Url(random);
      if (key !== undefined && random !== undefined && rawRandom !== null && toBase64Url(rawRandom) === random) {
        body.uint((1 + str(key)) * 2 + 1);
        body.raw(rawRandom);
      } else if (key !== undefined && random !== undefined) {
        body.uint((1 + str(key)) * 2);
        body.string(random);
      } else {
        body.uint(0);
        body.string(r.credentialId);
      }
    }
  }

  const out = new Writer();
  out.byte(FLEET_CODEC_FORMAT);
  out.byte(answer.kind === "full" ? 0 : 1);
  out.string(answer.epoch);
  out.uint(answer.version);
  out.uint(answer.policyVersion);
  out.uint(answer.carriersVersion);
  out.number(baseTime);
  out.uint(strings.items.length);
  for (const s of strings.items) out.string(s);
  out.uint(patterns.items.length);
  for (const [pre, post] of patterns.items) {
    out.uint(pre);
    out.uint(post);
  }
  out.uint(hardware.items.length);
  for (const g of hardware.items) {
    out.uint(GPU_CLASSES.indexOf(g.class));
    out.number(g.vramGb);
    out.number(g.count);
  }
  out.uint(records.length);
  const head = out.bytes();
  const tail = body.bytes();
  const message = new Uint8Array(head.length + tail.length);
  message.set(head);
  message.set(tail, head.length);
  return message;
}

/** Decodes what encodeFleetAnswer made; throws FleetCodecError on anything else. */
export function decodeFleetAnswer(bytes: Uint8Array): FleetAnswer {
  const r = new Reader(bytes);
  const format = r.byte();
  if (format !== FLEET_CODEC_FORMAT) throw new FleetCodecError(`unknown fleet format ${format} (this decoder reads ${FLEET_CODEC_FORMAT})`);
  const kind = r.byte();
  if (kind > 1) throw new FleetCodecError(`unknown answer kind ${kind}`);
  const epoch = r.string();
  const version = r.uint();
  const policyVersion = r.uint();
  const carriersVersion = r.uint();
  const baseTime = r.number();
  const strings = Array.from({ length: r.count(bytes.length, "strings") }, () => r.string());
  const str = (ref: number) => {
    const s = strings[ref];
    if (s === undefined) throw new FleetCodecError(`string ref ${ref} out of range`);
    return s;
  };
  const patterns = Array.from({ length: r.count(bytes.length, "patterns") }, () => [str(r.uint()), str(r.uint())] as const);
  const hardware = Array.from({ length: r.count(bytes.length, "hardware") }, (): GpuHardware => {
    const gpuClass: GpuClass | undefined = GPU_CLASSES[r.uint()];
    if (gpuClass === undefined) throw new FleetCodecError("unknown GPU class");
    return { class: gpuClass, vramGb: r.number(), count: r.number() };
  });
  const count = r.count(bytes.length, "records");
  const records: NodeUpdate[] = [];
  const lastSeq = new Map<string, number>();
  let previousId = "";
  for (let i = 0; i < count; i++) {
    const flags = r.uint();
    if ((flags & ~KNOWN_FLAGS) !== 0) throw new FleetCodecError(`unknown flags ${flags}`);
    const prefix = r.uint();
    if (prefix > previousId.length) throw new FleetCodecError("id prefix longer than the previous id");
    const id = previousId.slice(0, prefix) + r.string();
    previousId = id;
    const regionCode = r.uint();
    const catalogRegion = regionCode === 0 ? undefined : REGIONS[regionCode - 1];
    if (regionCode !== 0 && catalogRegion === undefined) throw new FleetCodecError(`region code ${regionCode} out of range`);
    const region = catalogRegion?.id ?? str(r.uint());
    if (regionCode === 0 && isRegionId(region)) throw new FleetCodecError(`catalog region ${region} sent as a string`);
    const seq = r.number(lastSeq.get(region) ?? 0);
    lastSeq.set(region, seq);
    if (flags & GONE) {
      if (flags !== GONE) throw new FleetCodecError("a removal carries no fields");
      records.push({ id, region, gone: true, seq });
      continue;
    }
    const kindHealth = r.uint();
    const nodeKind = KINDS[Math.floor(kindHealth / HEALTHS.length)];
    const health = HEALTHS[kindHealth % HEALTHS.length];
    if (nodeKind === undefined || health === undefined) throw new FleetCodecError(`bad kind/health ${kindHealth}`);
    let gpu: GpuHardware | undefined;
    if (flags & HAS_GPU) {
      const ref = r.uint();
      gpu = hardware[ref];
      if (gpu === undefined) throw new FleetCodecError(`hardware ref ${ref} out of range`);
    }
    const capacity = r.number();
    const patternRef = r.uint();
    let endpoint: string;
    if (patternRef === 0) endpoint = r.string();
    else {
      const pattern = patterns[patternRef - 1];
      if (pattern === undefined) throw new FleetCodecError(`endpoint pattern ${patternRef} out of range`);
      endpoint = pattern[0] + id + pattern[1];
    }
    const healthReason = str(r.uint());
    const healthSince = r.number(baseTime);
    const connectedAt = flags & OWN_CONNECTED_AT ? r.number(healthSince) : healthSince;
    const returnedAt = flags & HAS_RETURNED_AT ? r.number(healthSince) : undefined;
    const inFlight = r.number();
    const free = flags & OWN_FREE ? r.number() : capacity - inFlight;
    const load = flags & OWN_LOAD ? r.number() : agentLoad(inFlight, capacity);
    const maxMbps = flags & HAS_MAX_MBPS ? r.number() : undefined;
    const tier = flags & HAS_TIER ? r.number() : undefined;
    const users = flags & HAS_USERS ? r.number() : undefined;
    const partner = flags & HAS_PARTNER ? str(r.uint()) : undefined;
    const congestion = flags & HAS_CONGESTION ? r.number() : undefined;
    const geoFlag = flags & HAS_GEO_FLAG ? { colo: str(r.uint()), km: r.number() } : undefined;
    const modelList = flags & HAS_MODELS ? str(r.uint()) : undefined;
    const models = modelList === undefined ? undefined : modelList === "" ? [] : modelList.split(MODEL_SEPARATOR);
    const pricePerGpuHour = flags & HAS_PRICE ? r.number() : undefined;
    const queue = flags & HAS_QUEUE ? r.number() : undefined;
    const tokensPerSecond = flags & HAS_TOKENS_PER_SECOND ? r.number() : undefined;
    let credentialId: string | undefined;
    if (flags & HAS_CREDENTIAL) {
      const tag = r.uint();
      const key = Math.floor(tag / 2) - 1;
      if (tag === 0) credentialId = r.string();
      else credentialId = `${str(key)}_${tag % 2 === 1 ? toBase64Url(r.raw()) : r.string()}`;
    }
    records.push({
      id,
      kind: nodeKind,
      region,
      ...(gpu !== undefined ? { gpu: { ...gpu } } : {}),
      capacity,
      endpoint,
      health,
      healthReason,
      healthSince,
      ...(returnedAt !== undefined ? { returnedAt } : {}),
      load,
      inFlight,
      free,
      connectedAt,
      ...(partner !== undefined ? { partner } : {}),
      ...(congestion !== undefined ? { congestion } : {}),
      ...(maxMbps !== undefined ? { maxMbps } : {}),
      ...(tier !== undefined ? { tier } : {}),
      ...(users !== undefined ? { users } : {}),
      ...(geoFlag !== undefined ? { geoFlag } : {}),
      ...(models !== undefined ? { models } : {}),
      ...(pricePerGpuHour !== undefined ? { pricePerGpuHour } : {}),
      ...(queue !== undefined ? { queue } : {}),
      ...(tokensPerSecond !== undefined ? { tokensPerSecond } : {}),
      ...(credentialId !== undefined ? { credentialId } : {}),
      seq,
    });
  }
  if (!r.done) throw new FleetCodecError(`${bytes.length - r.at} trailing bytes`);
  const versions = { epoch, version, policyVersion, carriersVersion };
  if (kind === 1) return { kind: "delta", ...versions, updates: records };
  const nodes: NodeRecord[] = [];
  for (const record of records) {
    if ("gone" in record) throw new FleetCodecError("a full snapshot cannot remove nodes");
    nodes.push(record);
  }
  return { kind: "full", ...versions, nodes };
}

/** A snapshot's nodes in id order: ids then share prefixes and the encoding is smallest. */
export function sortedById<T extends { id: string }>(records: Iterable<T>): T[] {
  return [...records].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
