import { CarrierPartnerSchema, OffloadSummaryQuerySchema, PartnerIdSchema, RollbackRequestSchema, UsageQuerySchema, type CarrierDocument, type CarrierPartner } from "@meridian/protocol";
import { zValidator } from "@hono/zod-validator";
import { Hono, type Context } from "hono";
import { z } from "zod";
import { ADMIN_BODY_LIMIT, changeReason, etag, expectedVersion, limit, publishAnswer, validJson, type AdminApp, currentAnswer, versionAnswer } from "./admin-common";
import { requireRole } from "./auth";
import { HttpError } from "./errors";
import type { UsageRow } from "./offload-ledger";
import { carrierStore, offloadLedger } from "./durable";

const CARRIERS_BODY_LIMIT = 256 * 1024;
const HOUR_MS = 3600_000;

/** The query string, validated like a body; one error format. */
function validQuery<T extends z.ZodType>(schema: T) {
  return zValidator("query", schema, (result) => {
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new HttpError(400, "invalid_query", issue ? `${issue.path.join(".") || "query"}: ${issue.message}` : "invalid query");
    }
  });
}

function partnerParam(c: Context<AdminApp>): string {
  const parsed = PartnerIdSchema.safeParse(c.req.param("id"));
  if (!parsed.success) throw new HttpError(400, "invalid_partner_id", `partner ids: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}

/** Publishes `change(current document)` as a new version, compare-and-swap on If-Match. */
async function publishChange(c: Context<AdminApp>, change: (doc: CarrierDocument) => CarrierDocument, describe: string) {
  const expected = expectedVersion(c);
  const reason = changeReason(c);
  const store = carrierStore(c.env);
  const current = await store.current();
  // The store re-checks the version, so a concurrent edit between these two calls still loses.
  if (current.version !== expected) {
    throw new HttpError(412, "version_conflict", `the live carriers document is version ${current.version}; reload, reapply your change and retry`, { currentVersion: current.version });
  }
  const result = await store.publish({ document: change(current.document), expectedVersion: expected, actor: c.get("actor"), reason: `${describe}: ${reason}` });
  return publishAnswer(c, "carriers", result);
}

export const carriersAdmin = new Hono<AdminApp>();

// ---- partners: one versioned, audited document ------------------------------------------

carriersAdmin.get("/carriers", requireRole("viewer"), (c) => currentAnswer(c, carrierStore(c.env).current()));

carriersAdmin.put("/carriers", requireRole("admin"), limit(CARRIERS_BODY_LIMIT), validJson(z.unknown()), async (c) => {
  const expected = expectedVersion(c);
  const reason = changeReason(c);
  const result = await carrierStore(c.env).publish({ document: c.req.valid("json"), expectedVersion: expected, actor: c.get("actor"), reason });
  return publishAnswer(c, "carriers", result);
});

carriersAdmin.get("/carriers/versions", requireRole("viewer"), async (c) => c.json({ versions: await carrierStore(c.env).list() }));

carriersAdmin.get("/carriers/versions/:version", requireRole("viewer"), (c) => versionAnswer(c, "carriers", (v) => carrierStore(c.env).get(v)));

carriersAdmin.post("/carriers/rollback", requireRole("admin"), limit(ADMIN_BODY_LIMIT), validJson(RollbackRequestSchema), async (c) => {
  const target = await carrierStore(c.env).get(c.req.valid("json").version);
  if (target === null) throw new HttpError(404, "version_not_found", `there is no carriers version ${c.req.valid("json").version}`);
  return publishChange(c, () => target.document, `rollback to v${target.version}`);
});

carriersAdmin.get("/carriers/audit", requireRole("viewer"), async (c) => c.json({ entries: await carrierStore(c.env).audit() }));

carriersAdmin.get("/carriers/:id", requireRole("viewer"), async (c) => {
  const id = partnerParam(c);
  const current = await carrierStore(c.env).current();
  const partner = current.document.partners.find((p) => p.id === id);
  if (partner === undefined) throw new HttpError(404, "unknown_partner", `no carrier partner ${id} in version ${current.version}`);
  c.header("etag", etag(current.version));
  return c.json({ version: current.version, partner });
});

/** Creates or replaces one partner; the path names it, so the body's id may be left out. */
carriersAdmin.put("/carriers/:id", requireRole("admin"), limit(ADMIN_BODY_LIMIT), validJson(z.looseObject({ id: z.string().optional() })), async (c) => {
  const id = partnerParam(c);
  const body = c.req.valid("json");
  if (body.id !== undefined && body.id !== id) throw new HttpError(400, "invalid_body", `body id ${body.id} does not match the path (${id})`);
  const parsed = CarrierPartnerSchema.safeParse({ ...body, id });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
    throw new HttpError(400, "invalid_body", `${issues[0]?.path || "body"}: ${issues[0]?.message ?? "invalid"}`, { issues });
  }
  const partner: CarrierPartner = parsed.data;
  return publishChange(c, (doc) => ({ partners: [...doc.partners.filter((p) => p.id !== id), partner].sort((a, b) => (a.id < b.id ? -1 : 1)) }), `upsert ${id}`);
});

carriersAdmin.delete("/carriers/:id", requireRole("admin"), async (c) => {
  const id = partnerParam(c);
  const current = await carrierStore(c.env).current();
  if (!current.document.partners.some((p) => p.id === id)) throw new HttpError(404, "unknown_partner", `no carrier partner ${id} in version ${current.version}`);
  return publishChange(c, (doc) => ({ partners: doc.partners.filter((p) => p.id !== id) }), `remove ${id}`);
});

// ---- usage: the ledger, for settlement ------------------------------------------------

const CSV_COLUMNS = ["hour", "node", "region", "route", "requests", "bytes", "credited_bytes", "aborted_requests", "flagged_requests"] as const;

function toCsv(rows: UsageRow[]): string {
  const lines = rows.map((r) => [r.hour, r.node, r.region, r.route, r.requests, r.bytes, r.creditedBytes, r.abortedRequests, r.flaggedRequests].join(","));
  return `${[CSV_COLUMNS.join(","), ...lines].join("\n")}\n`;
}

/** [from, to) widened to whole hours: an hour's row counts when its hour starts in the range. */
function hourRange(from: string, to: string): [number, number] {
  return [Math.floor(Date.parse(from) / HOUR_MS) * HOUR_MS, Math.ceil(Date.parse(to) / HOUR_MS) * HOUR_MS];
}

carriersAdmin.get("/offload/usage", requireRole("viewer"), validQuery(UsageQuerySchema), async (c) => {
  const query = c.req.valid("query");
  const [fromMs, toMs] = hourRange(query.from, query.to);
  const [current, usage] = await Promise.all([carrierStore(c.env).current(), offloadLedger(c.env, query.partner).usage(fromMs, toMs)]);
  // A removed partner's ledger still answers (settlement may come after the contract ends).
  if (usage.rows.length === 0 && !current.document.partners.some((p) => p.id === query.partner)) {
    throw new HttpError(404, "unknown_partner", `no carrier partner ${query.partner} is configured and its ledger has no usage in this range`);
  }
  if (query.format === "csv") {
    return c.body(toCsv(usage.rows), 200, { "content-type": "text/csv; charset=utf-8", "content-disposition": `attachment; filename="${query.partner}-usage.csv"` });
  }
  return c.json({ partner: query.partner, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), totals: usage.totals, rows: usage.rows });
});

/** Offload share per partner and subscriber region; the last 24 hours unless told otherwise. */
carriersAdmin.get("/offload/summary", requireRole("viewer"), validQuery(OffloadSummaryQuerySchema), async (c) => {
  const query = c.req.valid("query");
  const now = Date.now();
  const [fromMs, toMs] = hourRange(query.from ?? new Date(now - 24 * HOUR_MS).toISOString(), query.to ?? new Date(now).toISOString());
  if (fromMs >= toMs) throw new HttpError(400, "invalid_query", "from must be before to");
  const { document } = await carrierStore(c.env).current();
  const partners = await Promise.all(
    document.partners.map(async (p) => {
      const { rows } = await offloadLedger(c.env, p.id).usage(fromMs, toMs);
      const byRegion = new Map<string, { offloadRequests: number; backboneRequests: number; offloadBytes: number; backboneBytes: number }>();
      for (const r of rows) {
        const cell = byRegion.get(r.region) ?? { offloadRequests: 0, backboneRequests: 0, offloadBytes: 0, backboneBytes: 0 };
        if (r.route === "offload") {
          cell.offloadRequests += r.requests;
          cell.offloadBytes += r.bytes;
        } else {
          cell.backboneRequests += r.requests;
          cell.backboneBytes += r.bytes;
        }
        byRegion.set(r.region, cell);
      }
      const share = (a: number, b: number) => (a + b === 0 ? null : Math.round((a / (a + b)) * 10_000) / 10_000);
      const regions = [...byRegion].sort(([a], [b]) => (a < b ? -1 : 1)).map(([region, cell]) => ({ region, ...cell, offloadShare: share(cell.offloadRequests, cell.backboneRequests), offloadByteShare: share(cell.offloadBytes, cell.backboneBytes) }));
      const sum = (key: "offloadRequests" | "backboneRequests" | "offloadBytes" | "backboneBytes") => regions.reduce((acc, r) => acc + r[key], 0);
      return {
        partner: p.id,
        name: p.name,
        dial: p.offload.dial,
        offloadShare: share(sum("offloadRequests"), sum("backboneRequests")),
        offloadByteShare: share(sum("offloadBytes"), sum("backboneBytes")),
        regions,
      };
    }),
  );
  return c.json({ from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), partners });
});

/**
 * Chaos hook for local runs only (DEV_CHAOS_HOOKS=true): restarts a partner's ledger object
 * the way a crash would (in-memory state gone, storage kept), to prove writes survive it.
 */
carriersAdmin.post("/offload/ledger/:id/crash", requireRole("admin"), async (c) => {
  if (c.env.DEV_CHAOS_HOOKS !== "true") throw new HttpError(404, "not_found", "chaos hooks are off (DEV_CHAOS_HOOKS)");
  const id = partnerParam(c);
  await offloadLedger(c.env, id)
    .crash()
    .catch(() => {});
  return c.json({ crashed: id });
});
