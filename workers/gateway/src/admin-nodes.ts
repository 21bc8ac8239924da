import { EnrollmentSchema, JoinTokenRequestSchema, NodeIdSchema, parseCellCapacity } from "@meridian/protocol";
import { Hono, type Context } from "hono";
import { ADMIN_BODY_LIMIT, changeReason, limit, validJson, type AdminApp } from "./admin-common";
import { requireRole } from "./auth";
import { directory, nodeRegistry } from "./durable";
import { checkEnrollment, credentialAnswer } from "./enrollment";
import { HttpError } from "./errors";

/** Enrolled nodes: enrollment, the registry with live status, revocation, join tokens, audit. */
export const nodesAdmin = new Hono<AdminApp>();

function nodeParam(c: Context<AdminApp>): string {
  const parsed = NodeIdSchema.safeParse(c.req.param("id"));
  if (!parsed.success) throw new HttpError(400, "invalid_node_id", "node ids are lowercase letters, digits and dashes");
  return parsed.data;
}

nodesAdmin.post("/nodes", requireRole("admin"), limit(ADMIN_BODY_LIMIT), validJson(EnrollmentSchema), async (c) => {
  const enrollment = c.req.valid("json");
  await checkEnrollment(c.env, enrollment, new URL(c.req.url).host);
  return c.json(credentialAnswer(await nodeRegistry(c.env).enroll(enrollment, c.get("actor"))), 201);
});

/** Every enrolled node with its status: connected (a hub holds its socket), enrolled, revoked or expired. */
nodesAdmin.get("/nodes", requireRole("viewer"), async (c) => {
  const [registered, snapshot] = await Promise.all([nodeRegistry(c.env).list(), directory(c.env).snapshotSince(null, 0)]);
  const live = new Map((snapshot.kind === "full" ? snapshot.nodes : []).map((n) => [n.id, n]));
  const now = Date.now();
  const nodes = registered.map((n) => {
    const record = live.get(n.id);
    const status = n.status === "revoked" ? "revoked" : Date.parse(n.expiresAt) <= now ? "expired" : record !== undefined && record.credentialId === n.credentialId ? "connected" : "enrolled";
    return { ...n, status, ...(record !== undefined && status === "connected" ? { health: record.health, endpoint: record.endpoint } : {}) };
  });
  return c.json({ count: nodes.length, nodes });
});

nodesAdmin.post("/nodes/:id/revoke", requireRole("admin"), async (c) => {
  const id = nodeParam(c);
  const reason = changeReason(c);
  const result = await nodeRegistry(c.env).revoke(id, reason, c.get("actor"));
  if (!result.revoked) throw new HttpError(404, "node_not_found", `no node ${id} is enrolled`);
  return c.json({ id, revoked: true, socketClosed: result.closed, region: result.region, hub: result.hub });
});

nodesAdmin.get("/nodes/audit", requireRole("viewer"), async (c) => c.json({ entries: await nodeRegistry(c.env).auditLog() }));

/** The hub cells in use: active enrolled nodes per cell of each region, against the capacity of a cell. */
nodesAdmin.get("/hubs", requireRole("viewer"), async (c) => {
  const cells = await nodeRegistry(c.env).cellCounts();
  return c.json({ capacity: parseCellCapacity(c.env.HUB_CELL_CAPACITY), count: cells.length, hubs: cells });
});

nodesAdmin.post("/join-tokens", requireRole("admin"), limit(ADMIN_BODY_LIMIT), validJson(JoinTokenRequestSchema), async (c) => {
  const { token, info } = await nodeRegistry(c.env).createJoinToken(c.req.valid("json"), c.get("actor"));
  // The token is shown this once; the registry keeps only its hash.
  return c.json({ token, ...info }, 201);
});

nodesAdmin.get("/join-tokens", requireRole("viewer"), async (c) => c.json({ tokens: await nodeRegistry(c.env).listJoinTokens() }));

nodesAdmin.delete("/join-tokens/:id", requireRole("admin"), async (c) => {
  const id = c.req.param("id");
  if (!(await nodeRegistry(c.env).revokeJoinToken(id, c.get("actor")))) throw new HttpError(404, "join_token_not_found", `no live join token ${id}`);
  return c.json({ id, revoked: true });
});
