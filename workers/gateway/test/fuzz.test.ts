/**
 * Fuzzing the gateway's edges (issue 16) with fast-check, inside workerd:
 * - node frames sent to a RegionHub over real sockets (before and after hello);
 * - admin JSON bodies: policy PUT / validate / dry-run, carriers, enrollment, join tokens;
 * - client headers on /route and /v1/* (x-meridian-*, x-client-*, authorization, huge and odd
 *   values: control characters, bidi overrides, lone surrogates);
 * plus the pure parsers behind them (NodeMessageSchema, the admin body schemas, readClientRequest),
 * which take the bulk of a large run because they cost microseconds, not milliseconds.
 *
 * For every input: the answer is a documented close code (CloseCode, never 4500) or the one
 * error shape `{ error: { code, message, requestId } }` with a 4xx/5xx status (never a 500 or
 * internal_error, never an exception past a handler); a second, well-behaved node in the same
 * hub stays connected and healthy; and the stored policy and carriers versions move only when
 * a write was accepted.
 *
 * The case count comes from vitest's `provide` (fuzzCases, from FUZZ_CASES; about 10k in CI).
 * `npm run fuzz` runs a million and prints the count of cases and the outcomes per code.
 */
import {
  CarrierDocumentSchema,
  CarrierPartnerSchema,
  CloseCode,
  EnrollmentSchema,
  JoinTokenRequestSchema,
  MAX_NODE_FRAME_BYTES,
  NodeMessageSchema,
  PROTOCOL_VERSION,
  PartnerIdSchema,
  PolicyDocumentSchema,
  RequirementsSchema,
  endpointProblem,
  identityMismatch,
  isSafeText,
  type CredentialClaims,
} from "@meridian/protocol";
import { SELF, env } from "cloudflare:test";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import baseline from "../../../infra/policies/baseline.json";
import { readClientRequest } from "../src/client";
import { carrierStore, policyStore } from "../src/durable";
import { endpointRules } from "../src/endpoints";
import { HttpError } from "../src/errors";
import { ADMIN, BASE, enroll, fleet, hello, joinNode, openNode, type TestNode } from "./helpers";

declare module "vitest" {
  export interface ProvidedContext {
    /** Total fuzz cases of this run (vitest.config.ts provides it from FUZZ_CASES). */
    fuzzCases: number;
  }
}

// ---- budget ------------------------------------------------------------------------------

const TOTAL = Math.max(100, Math.round(inject("fuzzCases") ?? 10_000));
/**
 * Cases that go through real requests and sockets cost 10-60 ms each on a busy machine, the
 * pure ones microseconds: the first 10k cases are 19 % real I/O (about 40 s), every case past
 * them 1 %.
 */
const IO = Math.round(Math.min(TOTAL, 10_000) * 0.19 + Math.max(0, TOTAL - 10_000) * 0.01);
const PURE = TOTAL - IO;
const RUNS = {
  frames: Math.round(IO * 0.15),
  admin: Math.round(IO * 0.22),
  headers: 0,
  pureFrames: Math.round(PURE / 3),
  pureAdmin: Math.round(PURE / 3),
  pureHeaders: 0,
};
RUNS.headers = IO - RUNS.frames - RUNS.admin;
RUNS.pureHeaders = PURE - RUNS.pureFrames - RUNS.pureAdmin;
/** A test's time bound: ~10x what a quiet machine needs per case (CI is a busy 2-core box). */
const timeout = (runs: number, msPerCase: number) => 60_000 + runs * msPerCase;

// ---- outcome tally -----------------------------------------------------------------------

const tally = new Map<string, Map<string, number>>();
function count(property: string, outcome: string): void {
  const outcomes = tally.get(property) ?? new Map<string, number>();
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  tally.set(property, outcomes);
}

// ---- generators --------------------------------------------------------------------------

/** Strings that have broken parsers, logs and terminals before. */
const NASTY = [
  "\u0000", "\u0007", "\u0008", "\u001b[31m", "\u001b]0;x\u0007", "\t", "\r\n", "\u007f", "\u0085", "\u009b",
  "\u202a", "\u202e", "\u2066", "\u2069", "\u200b", "\u200f", "\ufeff", "\ufffd", "\uffff",
  "\ud800", "\udfff", "\udc00\ud800", "😀", "\u0301", "İ", "ß",
  "", " ", "  x  ", "%00", "%0d%0a", "../", "..\\", "${x}", "{{x}}", "<script>", "'\"", "\\u0000",
  "__proto__", "constructor", "prototype", "toString", "NaN", "-0", "1e400", "0x10", "Infinity", "null", "true",
];
/** Any UTF-16 code unit, lone surrogates included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const oddString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: codeUnit, maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 16 }) },
  { weight: 3, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 2, arbitrary: fc.array(fc.oneof(fc.constantFrom(...NASTY), fc.string({ maxLength: 4 })), { maxLength: 6 }).map((parts) => parts.join("")) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom("a", "€", "😀", "\u202e", "\u001b", "9"), fc.integer({ min: 200, max: 24_000 })).map(([c, n]) => c.repeat(n)) },
);
const oddNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, 1, -1, 0.5, 1.5, 100_000, 100_001, 2 ** 31, 2 ** 53 + 2, 1e308, -1e308, Number.MIN_VALUE),
);
/** Any JSON value, biased toward the values parsers get wrong. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: oddString },
  { weight: 2, arbitrary: oddNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { "": "" }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

type Path = (string | number)[];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Every path into a JSON value, the root included. */
function pathsOf(value: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...pathsOf(v, [...prefix, i])));
  else if (isObject(value)) for (const [k, v] of Object.entries(value)) out.push(...pathsOf(v, [...prefix, k]));
  return out;
}

interface Mutation {
  pick: number;
  /** set: replace the value; delete it; add a key (or an element); insert: put `value` inside a string. */
  op: "set" | "delete" | "add" | "insert";
  key: string;
  value: unknown;
}
const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  pick: fc.nat(),
  op: fc.constantFrom("set", "set", "delete", "add", "insert", "insert"),
  key: fc.oneof(oddString, fc.constantFrom("id", "type", "__proto__", "constructor", "extra")),
  value: oddValue,
});

/** A valid document with a few targeted changes: the shape that reaches deep into validators. */
function mutate(base: unknown, mutations: readonly Mutation[]): unknown {
  let doc: unknown = structuredClone(base);
  for (const mutation of mutations) {
    // A fresh copy each time: fast-check hands out the same constant objects again, and one
    // added into itself would make a cycle.
    const m = { ...mutation, value: structuredClone(mutation.value) };
    const paths = pathsOf(doc);
    const path = paths[m.pick % paths.length] ?? [];
    if (path.length === 0) {
      if (m.op === "set") doc = m.value;
      else if (m.op === "add" && isObject(doc)) Object.defineProperty(doc, m.key, { value: m.value, enumerable: true, configurable: true, writable: true });
      continue;
    }
    const parent = path.slice(0, -1).reduce<unknown>((node, k) => (Array.isArray(node) ? node[Number(k)] : isObject(node) ? node[String(k)] : undefined), doc);
    const last = path[path.length - 1] ?? "";
    const target = Array.isArray(parent) ? parent[Number(last)] : isObject(parent) ? parent[String(last)] : undefined;
    if (m.op === "insert") {
      // A valid string with something odd inside it: what slips past checks of the whole value.
      if (typeof target !== "string" || typeof m.value !== "string") continue;
      const at = m.pick % (target.length + 1);
      const changed = target.slice(0, at) + m.value + target.slice(at);
      if (Array.isArray(parent)) parent[Number(last)] = changed;
      else if (isObject(parent)) parent[String(last)] = changed;
    } else if (m.op === "add") {
      if (Array.isArray(target)) target.push(m.value);
      else if (isObject(target)) Object.defineProperty(target, m.key, { value: m.value, enumerable: true, configurable: true, writable: true });
    } else if (Array.isArray(parent)) {
      if (m.op === "delete") parent.splice(Number(last), 1);
      else parent[Number(last)] = m.value;
    } else if (isObject(parent)) {
      if (m.op === "delete") delete parent[String(last)];
      else parent[String(last)] = m.value;
    }
  }
  return doc;
}

/** A body built from a base document: as is, mutated, any JSON value, or raw (often invalid) text. */
function bodyArb(base: unknown): fc.Arbitrary<{ text: string; kind: string }> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant({ text: JSON.stringify(base), kind: "base" }) },
    { weight: 8, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 3 }).map((ms) => ({ text: JSON.stringify(mutate(base, ms)) ?? "null", kind: "mutated" })) },
    { weight: 2, arbitrary: oddValue.map((v) => ({ text: JSON.stringify(v) ?? "null", kind: "json" })) },
    { weight: 2, arbitrary: oddString.map((s) => ({ text: s, kind: "raw" })) },
    { weight: 1, arbitrary: fc.tuple(fc.nat(), oddString).map(([cut, s]) => { const t = JSON.stringify(base); const at = cut % (t.length + 1); return { text: t.slice(0, at) + s + t.slice(at), kind: "spliced" }; }) },
  );
}

// ---- the fleet every property runs beside ------------------------------------------------

/** The fuzz hub's region; nothing else in the test suite uses it. */
const REGION = "hel";
/** The well-behaved node in the same hub as every fuzzed socket. */
const GOOD = "fz-good-node";
/** Node ids the frame fuzzer connects as, in turn (the hub allows 10 connects per id per 10 s). */
const POOL_SIZE = 48;
const H100 = { class: "h100", vramGb: 80, count: 8 } as const;
const CARRIER = {
  id: "fz-carrier",
  name: "Fuzz Mobile",
  regions: ["hel"],
  offload: { maxHotspotKm: 50, minTier: 2, congestionThreshold: 0.7, hysteresis: 0.1, dial: { base: 10, max: 60 } },
};
const ENROLLMENT = { id: "fz-enrolled", kind: "gpu", region: REGION, gpu: H100, capacity: 8, endpoint: "http://fz-enrolled.test/v1", ttlDays: 30 };
const JOIN_TOKEN = { scope: { regions: [REGION], kinds: ["gpu"], gpuClasses: ["h100"], maxCapacity: 8, maxGpus: 8 }, uses: 1, ttlSeconds: 3600, note: "fuzz" };

let good: TestNode;
let goodClosed: { code: number; reason: string } | null = null;
const quiet: { mockRestore(): void }[] = [];
/** The runner's console, kept before the hub's per-frame log lines are muted. */
const print = console.log.bind(console);

async function expectGoodNodeHealthy(): Promise<void> {
  expect(goodClosed, "the well-behaved node's socket was closed").toBeNull();
  const entry = (await fleet()).find((n) => n.id === GOOD);
  expect(entry?.health, "the well-behaved node's health").toBe("healthy");
}

async function storedVersions(): Promise<{ policy: number; carriers: number }> {
  const [policy, carriers] = await Promise.all([policyStore(env).current(), carrierStore(env).current()]);
  return { policy: policy.version, carriers: carriers.version };
}

/** The one error shape; returns the code. */
function expectErrorShape(status: number, text: string, where: string): string {
  expect(status, `${where}: status`).toBeGreaterThanOrEqual(400);
  expect(status, `${where}: a 500 is a crash`).not.toBe(500);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${where}: ${status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  const error = isObject(body) ? body.error : undefined;
  if (!isObject(error) || typeof error.code !== "string" || typeof error.message !== "string" || typeof error.requestId !== "string") {
    throw new Error(`${where}: ${status} without the error shape: ${text.slice(0, 300)}`);
  }
  expect(error.code, `${where}: internal_error`).not.toBe("internal_error");
  return error.code;
}

beforeAll(async () => {
  good = await joinNode(GOOD, REGION);
  void good.closed.then((c) => {
    goodClosed = c;
  });
  // The hub and the gateway log a line per connect, close and error: muted while fuzzing.
  for (const level of ["log", "warn", "error"] as const) quiet.push(vi.spyOn(console, level).mockImplementation(() => undefined));
  print(`[fuzz] ${TOTAL} cases: ${JSON.stringify(RUNS)}`);
});

afterAll(() => {
  for (const spy of quiet) spy.mockRestore();
  const lines: string[] = [];
  let total = 0;
  for (const [property, outcomes] of tally) {
    const n = [...outcomes.values()].reduce((a, b) => a + b, 0);
    total += n;
    lines.push(`[fuzz] ${property}: ${n} cases`);
    for (const [outcome, k] of [...outcomes].sort((a, b) => b[1] - a[1])) lines.push(`[fuzz]   ${String(k).padStart(9)}  ${outcome}`);
  }
  lines.push(`[fuzz] total: ${total} cases (asked for ${TOTAL})`);
  print(lines.join("\n"));
});

// ---- node frames ---------------------------------------------------------------------------

/** Frames as a node might send them; "__SELF__" becomes the sending node's id. */
const SELF_ID = "__SELF__";
const validHello = { type: "hello", protocol: PROTOCOL_VERSION, node: SELF_ID, kind: "gpu", gpu: H100, capacity: 8, endpoint: "http://fz.test/n/x", heartbeatMs: 1000, agent: "fuzz/1" };
const validHeartbeat = { type: "heartbeat", seq: 1, load: 0.5, inFlight: 1, free: 3 };
const validDrain = { type: "drain", reason: "maintenance" };
const frameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(JSON.stringify(validHeartbeat), JSON.stringify(validDrain), JSON.stringify(validHello), "ping", "pong", "", "{}", "[]", "null", '{"type":"hello"}') },
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom<unknown>(validHello, validHeartbeat, validDrain), fc.array(mutationArb, { minLength: 1, maxLength: 3 })).map(([base, ms]) => JSON.stringify(mutate(base, ms)) ?? "null") },
  { weight: 1, arbitrary: fc.constantFrom(GOOD, "fz-f-00", "x", "UPPER", "a".repeat(64)).map((node) => JSON.stringify({ ...validHello, node })) },
  { weight: 2, arbitrary: oddString },
  { weight: 1, arbitrary: oddValue.map((v) => JSON.stringify(v) ?? "null") },
  // Around the frame limit, in one-byte and three-byte characters.
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom("a", "€"), fc.integer({ min: -4, max: 4 })).map(([c, d]) => JSON.stringify({ ...validDrain, reason: c.repeat(Math.floor((MAX_NODE_FRAME_BYTES - 30) / (c === "a" ? 1 : 3)) + d * 8) })) },
);
const DOCUMENTED_CLOSE_CODES = new Set<number>(Object.values(CloseCode));
/** The frame every case ends with: it closes a socket the fuzzed frames left open. */
const SENTINEL_REASON = "binary frames are not part of the protocol";

describe("fuzz: node frames sent to a RegionHub", () => {
  const credentials: string[] = [];
  const connectsAt: number[][] = [];

  beforeAll(async () => {
    for (let i = 0; i < POOL_SIZE; i++) {
      credentials.push(await enroll({ id: `fz-f-${String(i).padStart(2, "0")}`, kind: "gpu", region: REGION, gpu: H100, capacity: 8 }));
      connectsAt.push([]);
    }
  }, 120_000);

  /** The pool member that may connect soonest without reaching the hub's connect limit. */
  async function nextSender(turn: number): Promise<{ id: string; credential: string }> {
    const i = turn % POOL_SIZE;
    const times = (connectsAt[i] ?? []).filter((t) => Date.now() - t < 10_500);
    if (times.length >= 9) await new Promise((r) => setTimeout(r, 10_500 - (Date.now() - (times[0] ?? Date.now()))));
    times.push(Date.now());
    connectsAt[i] = times;
    return { id: `fz-f-${String(i).padStart(2, "0")}`, credential: credentials[i] ?? "" };
  }

  it(
    "answers every frame sequence with a documented close code, and only on the sending socket",
    async () => {
      let turn = 0;
      await fc.assert(
        fc.asyncProperty(fc.boolean(), fc.array(frameArb, { minLength: 1, maxLength: 3 }), async (afterHello, frames) => {
          const sender = await nextSender(turn++);
          const node = await openNode(sender.credential);
          if (afterHello) {
            node.ws.send(hello(sender.id));
            const welcome = await node.next();
            if (welcome.type !== "welcome") {
              // Refused before the fuzzed frames (e.g. the connect limit): still a documented close.
              const closed = await node.closed;
              expect(DOCUMENTED_CLOSE_CODES.has(closed.code), `close ${closed.code} ${closed.reason}`).toBe(true);
              count("frames (real sockets)", `refused before the frames: ${closed.code}`);
              return;
            }
          }
          for (const frame of frames) node.ws.send(frame.replaceAll(SELF_ID, sender.id));
          node.ws.send(new Uint8Array([0]));
          const closed = await Promise.race([node.closed, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
          if (closed === null) throw new Error(`no close 15 s after ${JSON.stringify(frames).slice(0, 300)}`);
          expect(DOCUMENTED_CLOSE_CODES.has(closed.code), `close ${closed.code} (${closed.reason}) is not a CloseCode`).toBe(true);
          expect(closed.code, `internal error on ${JSON.stringify(frames).slice(0, 300)}: ${closed.reason}`).not.toBe(CloseCode.internalError);
          const phase = afterHello ? "after hello" : "first frames";
          count("frames (real sockets)", closed.code === CloseCode.invalidMessage && closed.reason === SENTINEL_REASON ? `${phase}: accepted (kept open)` : `${phase}: ${closed.code}`);
          expect(goodClosed, "the well-behaved node's socket was closed").toBeNull();
        }),
        { numRuns: RUNS.frames },
      );
      await expectGoodNodeHealthy();
    },
    timeout(RUNS.frames, 500),
  );

  it(
    "parses any frame without throwing; an accepted hello carries only safe text (pure)",
    () => {
      const rules = endpointRules(env, "gateway.test");
      const claims: CredentialClaims = { v: 1, id: "fz-pure", kind: "gpu", region: REGION, gpu: H100, capacity: 8, jti: "fz-pure-jti", iat: 0, exp: 1 };
      fc.assert(
        fc.property(frameArb, (raw) => {
          const frame = raw.replaceAll(SELF_ID, claims.id);
          let json: unknown;
          try {
            json = JSON.parse(frame);
          } catch {
            count("frames (pure)", "not JSON: 4400");
            return;
          }
          const parsed = NodeMessageSchema.safeParse(json);
          if (!parsed.success) return count("frames (pure)", "invalid message: 4400");
          const msg = parsed.data;
          if (msg.type !== "hello") return count("frames (pure)", `valid ${msg.type}`);
          const mismatch = identityMismatch(claims, msg);
          const refused = endpointProblem(msg.endpoint, rules);
          if (mismatch === null && refused === null) expect(isSafeText(msg.endpoint), `accepted endpoint ${JSON.stringify(msg.endpoint)}`).toBe(true);
          count("frames (pure)", mismatch !== null ? "hello, identity mismatch: 4403" : refused !== null ? "hello, endpoint refused: 4422" : "valid hello");
        }),
        { numRuns: RUNS.pureFrames },
      );
    },
    timeout(RUNS.pureFrames, 2),
  );
});

// ---- admin JSON bodies -----------------------------------------------------------------------

interface AdminTarget {
  name: string;
  method: "PUT" | "POST";
  path: string;
  base: unknown;
  limit: number;
  /** The stored document an accepted write publishes a new version of. */
  writes?: "policy" | "carriers";
  /** Checks a 2xx body of this target; a write's version is checked separately. */
  accepted?: (status: number, body: unknown) => void;
}

const ADMIN_TARGETS: AdminTarget[] = [
  { name: "PUT /admin/policy", method: "PUT", path: "/admin/policy", base: baseline, limit: 512 * 1024, writes: "policy" },
  { name: "POST /admin/policy/validate", method: "POST", path: "/admin/policy/validate", base: baseline, limit: 512 * 1024 },
  { name: "POST /admin/policy/dry-run", method: "POST", path: "/admin/policy/dry-run", base: baseline, limit: 512 * 1024 },
  { name: "PUT /admin/carriers", method: "PUT", path: "/admin/carriers", base: { partners: [CARRIER] }, limit: 256 * 1024, writes: "carriers" },
  { name: "PUT /admin/carriers/:id", method: "PUT", path: `/admin/carriers/${CARRIER.id}`, base: CARRIER, limit: 64 * 1024, writes: "carriers" },
  { name: "POST /admin/nodes", method: "POST", path: "/admin/nodes", base: ENROLLMENT, limit: 64 * 1024, accepted: (status, body) => expect(status === 201 && isObject(body) && typeof body.credential === "string").toBe(true) },
  { name: "POST /admin/join-tokens", method: "POST", path: "/admin/join-tokens", base: JOIN_TOKEN, limit: 64 * 1024, accepted: (status, body) => expect(status === 201 && isObject(body) && typeof body.token === "string").toBe(true) },
];

/** Every string anywhere in a value (keys included). */
function stringsIn(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsIn(v, out);
  else if (isObject(value)) for (const [k, v] of Object.entries(value)) out.push(k, ...stringsIn(v));
  return out;
}

/** A body as sent: with a length, or streamed (chunked, no length), optionally past the route's limit. */
function requestBody(text: string, transfer: "length" | "stream"): BodyInit {
  if (transfer === "length") return text;
  const bytes = new TextEncoder().encode(text);
  const chunk = 16 * 1024;
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
}

describe("fuzz: admin JSON bodies", () => {
  const publishHeaders = async (target: AdminTarget): Promise<Record<string, string>> => {
    if (target.writes === undefined) return {};
    const versions = await storedVersions();
    return { "if-match": `"v${versions[target.writes]}"`, "x-meridian-reason": "fuzz" };
  };

  async function put(path: string, body: unknown, version: number): Promise<void> {
    const res = await SELF.fetch(`${BASE}${path}`, { method: "PUT", headers: { ...ADMIN, "content-type": "application/json", "if-match": `"v${version}"`, "x-meridian-reason": "fuzz setup" }, body: JSON.stringify(body) });
    expect(res.status, await res.text()).toBe(200);
  }

  beforeAll(async () => {
    await put("/admin/carriers", { partners: [CARRIER] }, (await storedVersions()).carriers);
  });

  afterAll(async () => {
    // Accepted fuzz writes published real versions: put the documents back for the properties after.
    const versions = await storedVersions();
    await put("/admin/policy", baseline, versions.policy);
    await put("/admin/carriers", { partners: [CARRIER] }, versions.carriers);
  });

  it(
    "answers every body with a 2xx or the error shape, and changes a stored document only when it accepts a write",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.nat({ max: ADMIN_TARGETS.length - 1 }).chain((t) => fc.tuple(fc.constant(t), bodyArb(ADMIN_TARGETS[t]?.base ?? null))),
          fc.constantFrom("application/json", "application/json", "application/json", "application/json; charset=utf-8", "text/plain", "none"),
          fc.constantFrom<"length" | "stream">("length", "length", "length", "stream"),
          fc.constantFrom(false, false, false, false, false, true),
          async ([t, body], contentType, transfer, oversize) => {
            const target = ADMIN_TARGETS[t];
            if (target === undefined) throw new Error(`no target ${t}`);
            const text = oversize ? body.text + " ".repeat(target.limit) : body.text;
            let parsed: unknown = undefined;
            try {
              parsed = JSON.parse(text);
            } catch {
              // Not JSON: sent as is.
            }
            // Re-enrolling the well-behaved node would (rightly) take its credential away.
            fc.pre(!(isObject(parsed) && parsed.id === GOOD));
            const before = await storedVersions();
            const headers: Record<string, string> = { ...ADMIN, ...(await publishHeaders(target)), ...(contentType === "none" ? {} : { "content-type": contentType }) };
            const res = await SELF.fetch(`${BASE}${target.path}`, { method: target.method, headers, body: requestBody(text, transfer) });
            const answer = await res.text();
            const where = `${target.name} (${body.kind}, ${transfer}${oversize ? ", oversize" : ""}) ${text.slice(0, 200)}`;
            const after = await storedVersions();
            let outcome: string;
            if (res.status >= 200 && res.status < 300) {
              outcome = String(res.status);
              target.accepted?.(res.status, JSON.parse(answer));
            } else {
              outcome = `${res.status} ${expectErrorShape(res.status, answer, where)}`;
            }
            const wrote = res.status === 200 && target.writes !== undefined;
            expect(after.policy, `${where}: policy version`).toBe(before.policy + (wrote && target.writes === "policy" ? 1 : 0));
            expect(after.carriers, `${where}: carriers version`).toBe(before.carriers + (wrote && target.writes === "carriers" ? 1 : 0));
            expect(goodClosed, "the well-behaved node's socket was closed").toBeNull();
            count("admin bodies (HTTP)", `${target.name}: ${outcome}`);
          },
        ),
        { numRuns: RUNS.admin },
      );
      await expectGoodNodeHealthy();
    },
    timeout(RUNS.admin, 500),
  );

  it(
    "parses any body without throwing; what the schemas accept carries only safe text (pure)",
    () => {
      const rules = endpointRules(env, "gateway.test");
      const accept = (name: string, ok: boolean, document: unknown) => {
        if (ok) for (const s of stringsIn(document)) expect(isSafeText(s), `${name} accepted ${JSON.stringify(s)}`).toBe(true);
        count("admin bodies (pure)", `${name}: ${ok ? "accepted" : "refused"}`);
      };
      fc.assert(
        fc.property(fc.nat({ max: ADMIN_TARGETS.length - 1 }).chain((t) => fc.tuple(fc.constant(t), bodyArb(ADMIN_TARGETS[t]?.base ?? null))), ([t, body]) => {
          const target = ADMIN_TARGETS[t];
          if (target === undefined) throw new Error(`no target ${t}`);
          let json: unknown;
          try {
            json = JSON.parse(body.text);
          } catch {
            return count("admin bodies (pure)", `${target.name}: not JSON`);
          }
          // The schemas only: the policy's invariant analysis (~100 ms a document) runs over HTTP above.
          if (target.path.startsWith("/admin/policy")) {
            const result = PolicyDocumentSchema.safeParse(json);
            return accept("policy", result.success, result.data);
          }
          if (target.path === "/admin/carriers") {
            const result = CarrierDocumentSchema.safeParse(json);
            return accept("carriers", result.success, result.data);
          }
          if (target.path.startsWith("/admin/carriers/")) {
            const result = CarrierPartnerSchema.safeParse(json);
            return accept("carrier partner", result.success, result.data);
          }
          if (target.path === "/admin/nodes") {
            const result = EnrollmentSchema.safeParse(json);
            // The endpoint is checked by the endpoint rules right after the schema.
            const ok = result.success && (result.data.endpoint === undefined || endpointProblem(result.data.endpoint, rules) === null);
            return accept("enrollment", ok, result.data);
          }
          const result = JoinTokenRequestSchema.safeParse(json);
          return accept("join token", result.success, result.data);
        }),
        { numRuns: RUNS.pureAdmin },
      );
    },
    timeout(RUNS.pureAdmin, 5),
  );
});

// ---- client headers ------------------------------------------------------------------------

/** Sensible values per header, so fuzzed values meet valid ones and reach deep into the decision. */
const HEADER_VALUES: Record<string, readonly string[]> = {
  "x-meridian-kind": ["gpu", "hotspot", "carrier", " GPU ", "cpu"],
  "x-meridian-gpu": ["h100", "H100", "a100", "rtx4090", "tpu"],
  "x-meridian-min-vram-gb": ["1", "80", "4096", "4097", "0", "1e2", "-1", "0x10", " 8 ", "8.5"],
  "x-meridian-residency": ["eu", "us", "EU", "mars"],
  "x-meridian-carrier": [CARRIER.id, "nobody", "FZ-CARRIER"],
  "x-meridian-subscriber": ["sub-1", "x".repeat(129)],
  "x-client-lat": ["60.17", "-90", "90", "91", "NaN", "", "1e1", "44.6"],
  "x-client-lon": ["24.94", "-180", "180", "181", "Infinity", "33.5"],
  "x-client-country": ["FI", "fi", "RU", "IR", "KP", "CN", "T1", "XX", "ZZ", "FIN"],
  "x-client-subdivision": ["UA-43", "RU-SEV", "ua-14", "FI-18"],
  authorization: ["Bearer sk-fuzz-client-key", `Bearer ${env.ADMIN_TOKEN}`, "Basic eA==", "Bearer"],
  cookie: ["session=abc", "a=b; c=d"],
  "x-forwarded-for": ["203.0.113.9", "::1"],
  forwarded: ["for=203.0.113.9"],
  "x-real-ip": ["203.0.113.9"],
  "cf-ray": ["8f0000000000abcd-HEL"],
  "cf-connecting-ip": ["203.0.113.9"],
  "x-meridian-loop": ["x", ""],
  "x-meridian-dev-colo": ["hel", "nrt"],
  "content-type": ["application/json", "text/event-stream"],
  "x-request-id": ["client-chosen"],
};
const HEADER_NAMES = Object.keys(HEADER_VALUES);
/** Drops the only characters a header value cannot carry at all (the Headers API refuses NUL, CR and LF). */
const sendable = (value: string) => value.replace(/[\u0000\r\n]/g, "");
/** Any ASCII character but NUL, CR and LF: control characters (ESC, BEL, DEL...) included. */
const asciiUnit = fc.integer({ min: 1, max: 0x7f }).map((c) => String.fromCharCode(c));
const asciiOdd: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: asciiUnit, maxLength: 24 }) },
  { weight: 2, arbitrary: fc.constantFrom(...NASTY.filter((s) => /^[\u0000-\u007f]*$/.test(s))) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom("a", "9", "\u001b", "-"), fc.integer({ min: 200, max: 24_000 })).map(([c, n]) => c.repeat(n)) },
);
/**
 * Non-ASCII values (bidi overrides, lone surrogates, emoji, C1 controls) from a short list: workerd
 * sends them as UTF-8 but prints a warning for every one, so they are a small share of the values.
 */
const NON_ASCII = NASTY.filter((s) => !/^[\u0000-\u007f]*$/.test(s)).concat(["caf\u00e9", "\u202eFI", "gpu\u200b", "h100\ud800"]);
const headerValue = (name: string): fc.Arbitrary<string> =>
  fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...(HEADER_VALUES[name] ?? [""])) }, { weight: 8, arbitrary: asciiOdd }).map(sendable);
const asciiHeadersArb = fc.uniqueArray(
  fc.oneof(
    { weight: 9, arbitrary: fc.constantFrom(...HEADER_NAMES).chain((name) => fc.tuple(fc.constant(name), headerValue(name))) },
    { weight: 1, arbitrary: fc.tuple(fc.stringMatching(/^x-[a-z0-9-]{1,20}$/), headerValue("")) },
  ),
  { maxLength: 8, selector: ([name]) => name },
);
/** A client in Helsinki, next to the well-behaved node: fuzzed headers are laid over it. */
const HELSINKI: [string, string][] = [["x-client-lat", "60.17"], ["x-client-lon", "24.94"], ["x-client-country", "FI"]];
/** Later pairs replace earlier ones of the same name. */
const merged = (...lists: [string, string][][]): [string, string][] => [...new Map(lists.flat()).entries()];
/**
 * Seven requests in ten start from a valid location (or nearly every one would be refused
 * before routing), then ASCII headers; about one in 20 carries a non-ASCII value too.
 */
const locatedArb = fc.oneof({ weight: 7, arbitrary: fc.constant(HELSINKI) }, { weight: 3, arbitrary: fc.constant<[string, string][]>([]) });
const asciiRequestHeadersArb = fc.tuple(locatedArb, asciiHeadersArb).map(([base, pairs]) => merged(base, pairs));
const headersArb = fc
  .tuple(asciiRequestHeadersArb, fc.oneof({ weight: 19, arbitrary: fc.constant<[string, string][]>([]) }, { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...HEADER_NAMES), fc.constantFrom(...NON_ASCII).map(sendable)).map((pair) => [pair]) }))
  .map(([pairs, odd]) => merged(pairs, odd));
/** Every UTF-8 byte percent-encoded (lone surrogates become U+FFFD, as on the wire). */
const percentEncoded = (s: string) => [...new TextEncoder().encode(s)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
const pathArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("/route", "/route", "/v1/whoami", "/v1/chat/completions", "/v1/models", "/v1/data?x=1") },
  { weight: 1, arbitrary: oddString.map((s) => `/v1/${percentEncoded(s.slice(0, 200))}`) },
);
const methodArb = fc.constantFrom("GET", "GET", "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH");

/** What a client request reads to, by the pure parsers, or the HttpError it is refused with. */
async function readOrRefuse(request: Request, asEnv: Env): Promise<Awaited<ReturnType<typeof readClientRequest>> | HttpError> {
  try {
    return await readClientRequest(request, asEnv);
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
}

describe("fuzz: client headers on /route and /v1/*", () => {
  it(
    "answers every request with a node's answer or the error shape, and forwards none of the client's secrets",
    async () => {
      const forwarded: Request[] = [];
      const upstream = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
        forwarded.push(new Request(input, init));
        return new Response("ok", { status: 200 });
      });
      try {
        await fc.assert(
          fc.asyncProperty(headersArb, pathArb, methodArb, async (pairs, path, method) => {
            forwarded.length = 0;
            const headers = new Headers(pairs);
            const body = method === "POST" || method === "PUT" || method === "PATCH" ? '{"messages":[]}' : undefined;
            const res = await SELF.fetch(`${BASE}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
            const text = await res.text();
            const where = `${method} ${path} ${JSON.stringify(pairs).slice(0, 400)}`;
            let outcome: string;
            if (res.status >= 200 && res.status < 300) {
              outcome = String(res.status);
              if (path.startsWith("/v1/")) {
                expect(res.headers.get("x-meridian-node"), `${where}: served without x-meridian-node`).not.toBeNull();
                const sent = forwarded[forwarded.length - 1];
                expect(sent, `${where}: answered 2xx without reaching a node`).toBeDefined();
                for (const name of ["authorization", "cookie", "x-forwarded-for", "forwarded", "x-real-ip"]) {
                  expect(sent?.headers.get(name) ?? null, `${where}: ${name} reached the node`).toBeNull();
                }
              }
            } else if (method === "HEAD") {
              expect(res.status, `${where}: HEAD status`).not.toBe(500);
              outcome = `${res.status} (HEAD)`;
            } else {
              outcome = `${res.status} ${expectErrorShape(res.status, text, where)}`;
            }
            expect(goodClosed, "the well-behaved node's socket was closed").toBeNull();
            count("client headers (HTTP)", `${path.startsWith("/route") ? "/route" : "/v1/*"}: ${outcome}`);
          }),
          { numRuns: RUNS.headers },
        );
      } finally {
        upstream.mockRestore();
      }
      await expectGoodNodeHealthy();
    },
    timeout(RUNS.headers, 300),
  );

  it(
    "reads any headers and request.cf to a valid client request or a 400, and ignores x-client-* in production (pure)",
    async () => {
      // ASCII header values only here (non-ASCII ones go over HTTP above); request.cf takes anything.
      const production: Env = { ...env, DEV_TRUST_CLIENT_GEO: "false" };
      const cfField = fc.oneof(oddString, oddNumber, fc.constantFrom("FI", "RU", "T1", "XX", "43", "UA-43", "60.17", "24.94", "44.6", "33.5", undefined));
      const cfArb = fc.option(fc.record({ country: cfField, regionCode: cfField, latitude: cfField, longitude: cfField }, { requiredKeys: [] }), { nil: undefined });
      await fc.assert(
        fc.asyncProperty(asciiRequestHeadersArb, cfArb, fc.boolean(), async (pairs, cf, dev) => {
          const request = new Request(`${BASE}/v1/x`, { headers: new Headers(pairs), ...(cf === undefined ? {} : { cf }) });
          const read = await readOrRefuse(request, dev ? env : production);
          if (read instanceof HttpError) {
            expect(read.status).toBe(400);
            return count("client headers (pure)", `${dev ? "dev" : "production"}: 400 ${read.code}`);
          }
          if (!dev) expect(read.source, "production trusted x-client-* headers").toBe("cf");
          expect(read.country).toMatch(/^[A-Z]{2}$|^T1$/);
          if (read.subdivision !== undefined) expect(read.subdivision).toMatch(/^[A-Z]{2}-[A-Z0-9]{1,3}$/);
          if (read.location !== null) {
            expect(Math.abs(read.location.lat) <= 90 && Math.abs(read.location.lon) <= 180).toBe(true);
          }
          expect(RequirementsSchema.safeParse(read.requirements).success).toBe(true);
          if (read.residency !== undefined) expect(read.residency).toMatch(/^[a-z][a-z0-9-]{0,31}$/);
          if (read.carrier !== undefined) expect(PartnerIdSchema.safeParse(read.carrier).success).toBe(true);
          count("client headers (pure)", `${dev ? "dev" : "production"}: read (${read.source})`);
        }),
        { numRuns: RUNS.pureHeaders },
      );
    },
    timeout(RUNS.pureHeaders, 5),
  );
});
