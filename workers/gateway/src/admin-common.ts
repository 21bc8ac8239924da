import { zValidator } from "@hono/zod-validator";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { ZodType } from "zod";
import type { AdminVariables } from "./auth";
import { hasRole } from "./roles";
import { HttpError } from "./errors";
import { safeHeader } from "./safe-header";
import type { DocumentName, PublishResult } from "./policy-store";

/** Helpers every admin route shares: validation, body limits, compare-and-swap headers, publish answers. */
export type AdminApp = { Bindings: Env; Variables: AdminVariables };

export const ADMIN_BODY_LIMIT = 64 * 1024;

/** zod validation at the edge of a route, with the one error format. */
export function validJson<T extends ZodType>(schema: T) {
  return zValidator("json", schema, (result) => {
    if (!result.success) {
      const issues = result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
      const first = issues[0];
      throw new HttpError(400, "invalid_body", first ? `${first.path || "body"}: ${first.message}` : "invalid body", { issues });
    }
  });
}

/** Past the limit, a chunked body is read (and dropped) up to this much more before the 413 goes out. */
const OVERSIZE_DRAIN_BYTES = 8 * 1024 * 1024;

/**
 * Caps a request body at maxSize with a 413 in the error shape, also for chunked bodies that
 * declare no length: the rest of an oversize body is drained before answering, so the
 * client reads the 413 instead of a reset connection (hono's bodyLimit answers mid-upload).
 */
export const limit = (maxSize: number) =>
  createMiddleware(async (c, next) => {
    const tooLarge = () => new HttpError(413, "body_too_large", `this request body is limited to ${maxSize} bytes`);
    const body = c.req.raw.body;
    if (body === null) return next();
    const declared = c.req.header("content-length");
    if (declared !== undefined && c.req.header("transfer-encoding") === undefined) {
      if (Number(declared) > maxSize) throw tooLarge();
      return next();
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxSize + OVERSIZE_DRAIN_BYTES) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      if (size <= maxSize) chunks.push(value);
    }
    if (size > maxSize) throw tooLarge();
    const whole = new Uint8Array(size);
    let at = 0;
    for (const chunk of chunks) {
      whole.set(chunk, at);
      at += chunk.byteLength;
    }
    c.req.raw = new Request(c.req.raw, { body: whole });
    return next();
  });

export const etag = (version: number) => `"v${version}"`;

/** If-Match is required for every write: it names the version the editor started from. */
export function expectedVersion(c: Context<AdminApp>): number {
  const header = c.req.header("if-match");
  if (header === undefined) throw new HttpError(428, "precondition_required", 'send If-Match with the ETag of the version you edited (e.g. "v3")');
  const match = /^(?:W\/)?"v(\d+)"$/.exec(header.trim());
  if (match?.[1] === undefined) throw new HttpError(412, "version_conflict", `If-Match ${header} is not a version ETag such as "v3"`);
  return Number(match[1]);
}

export function changeReason(c: Context<AdminApp>): string {
  const reason = safeHeader(c, "x-meridian-reason");
  if (!reason) throw new HttpError(400, "reason_required", "send x-meridian-reason: why this change is made (it goes to the audit log)");
  return reason.slice(0, 500);
}

/** x-meridian-force: <reason> publishes despite invariant violations; admins only. */
export function forceReason(c: Context<AdminApp>): string | undefined {
  const force = safeHeader(c, "x-meridian-force");
  if (!force) return undefined;
  if (!hasRole(c.get("role"), "admin")) throw new HttpError(403, "forbidden", "only the admin role may force a publish");
  return force.slice(0, 500);
}

export function publishAnswer(c: Context<AdminApp>, document: DocumentName, result: PublishResult) {
  if (result.ok) {
    c.header("etag", etag(result.version));
    return c.json({ version: result.version, summary: result.summary, violations: result.violations });
  }
  switch (result.kind) {
    case "conflict":
      throw new HttpError(412, "version_conflict", `the live ${document} document is version ${result.currentVersion}; reload, reapply your change and retry`, { currentVersion: result.currentVersion });
    case "invalid":
      throw new HttpError(400, document === "policy" ? "invalid_policy" : "invalid_document", `${result.errors.length} problem(s): ${result.errors.map((e) => `${e.path ?? ""} ${e.message}`.trim()).join("; ")}`, { issues: result.errors });
    case "violations":
      throw new HttpError(422, "policy_violations", `the document breaks ${result.violations.length} invariant(s); fix it, or publish with x-meridian-force: <reason> as admin`, { violations: result.violations });
  }
}


/** GET .../versions/:version of a versioned document: the version with its ETag, or 400/404. */
export async function versionAnswer<T extends { version: number }>(c: Context<AdminApp>, document: DocumentName, get: (version: number) => Promise<T | null>) {
  const version = Number(c.req.param("version"));
  if (!Number.isInteger(version) || version < 1) throw new HttpError(400, "invalid_version", "versions are positive integers");
  const found = await get(version);
  if (found === null) throw new HttpError(404, "version_not_found", `there is no ${document} version ${version}`);
  c.header("etag", etag(found.version));
  return c.json(found);
}

/** GET of a versioned document: the live version with its ETag (what an editor sends back in If-Match). */
export async function currentAnswer<D>(c: Context<AdminApp>, current: Promise<{ version: number; createdAt: string; actor: string; reason: string; document: D }>) {
  const live = await current;
  c.header("etag", etag(live.version));
  return c.json({ version: live.version, createdAt: live.createdAt, actor: live.actor, reason: live.reason, document: live.document });
}
