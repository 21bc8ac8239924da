import { EnrollmentSchema, hubName, type CredentialClaims } from "@meridian/protocol";
import { Hono, type Context } from "hono";
import { ADMIN_BODY_LIMIT, limit, validJson } from "../admin-common";
import { bearerToken } from "../auth";
import { geoFlagOf } from "../client";
import { credentialKeys, verifyCredential } from "../credentials";
import { nodeRegistry, regionHub } from "../durable";
import { checkEnrollment, credentialAnswer } from "../enrollment";
import { HttpError } from "../errors";
import { CONNECT_TICKET_HEADER, writeTicket } from "../hub/connect-ticket";
import { isolate } from "../isolate";
import { joinTokenHash } from "../registry";

/** The node side: agents join with a join token, connect their WebSocket, and look at themselves. */
export const nodes = new Hono<{ Bindings: Env }>();

const unauthorized = (what: string) => new HttpError(401, "unauthorized", `send Authorization: Bearer <${what}>`, {}, { "www-authenticate": "Bearer" });

/**
 * The node credential of this request, verified (signature, key id, expiry) and checked
 * against the registry: only the node's one current credential is good. The same answer
 * names the cell of the region whose hub holds the node.
 */
async function nodeClaims(c: Context<{ Bindings: Env }>): Promise<{ claims: CredentialClaims; cell: number }> {
  const token = bearerToken(c.req.header("authorization"));
  if (token === null) throw unauthorized("node credential");
  const claims = await verifyCredential(await credentialKeys(c.env), token, Date.now());
  const { status, cell } = await nodeRegistry(c.env).check(claims.id, claims.jti);
  if (status !== "active") {
    const why = { revoked: "was revoked", superseded: "was replaced by a newer one (re-enrollment or a move)", unknown: "is not in the registry" }[status];
    throw new HttpError(401, "credential_revoked", `this credential for node ${claims.id} ${why}`, {}, { "www-authenticate": "Bearer" });
  }
  return { claims, cell };
}

nodes.get("/connect", async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new HttpError(426, "upgrade_required", "connect with a WebSocket upgrade", {}, { upgrade: "websocket" });
  }
  const { claims, cell } = await nodeClaims(c);
  const headers = new Headers(c.req.raw.headers);
  // Only the gateway speaks for a socket: a ticket the node sent along is dropped.
  headers.delete(CONNECT_TICKET_HEADER);
  // Where the socket arrived vs where the node is enrolled (anti-gaming); never trusted from the node.
  writeTicket(headers, claims, cell, new URL(c.req.url).host, geoFlagOf(c.req.raw, c.env, claims.region));
  return regionHub(c.env, claims.region, cell).fetch(new Request(c.req.raw, { headers }));
});

/** An operator's agent enrolls with a join token (the admin token never leaves the admins). */
nodes.post("/join", limit(ADMIN_BODY_LIMIT), validJson(EnrollmentSchema), async (c) => {
  const token = bearerToken(c.req.header("authorization"));
  if (token === null) throw unauthorized("join token");
  const enrollment = c.req.valid("json");
  await checkEnrollment(c.env, enrollment, new URL(c.req.url).host);
  return c.json(credentialAnswer(await nodeRegistry(c.env).join(await joinTokenHash(token), enrollment)), 201);
});

/** The operator's self-view: what the gateway thinks of this node right now. */
nodes.get("/me", async (c) => {
  const { claims, cell } = await nodeClaims(c);
  const view = await regionHub(c.env, claims.region, cell).nodeView(claims.id);
  const ejection = isolate.outliers.ejected().find((e) => e.id === claims.id);
  const requests = isolate.metrics.nodeRequests(claims.id);
  const base = { id: claims.id, region: claims.region, hub: hubName(claims.region, cell), kind: claims.kind, credential: { id: claims.jti, expiresAt: new Date(claims.exp * 1000).toISOString() } };
  if (view === null) return c.json({ ...base, state: "disconnected", stateReason: "no live socket at the node's hub", stateSince: null, requests });
  const { record, detector } = view;
  const ejected = ejection !== undefined && (record.health === "healthy" || record.health === "suspect");
  return c.json({
    ...base,
    state: ejected ? "ejected" : record.health,
    stateReason: ejected ? ejection.reason : record.healthReason,
    stateSince: new Date(ejected ? ejection.since : record.healthSince).toISOString(),
    endpoint: record.endpoint,
    connectedAt: new Date(record.connectedAt).toISOString(),
    load: record.load,
    free: record.free,
    detector,
    ...(ejection ? { ejections: ejection.ejections } : { ejections: 0 }),
    ...(record.geoFlag ? { geoFlag: record.geoFlag } : {}),
    // Counted by the isolate that answers: each isolate sees only the requests it proxied.
    requests,
  });
});
