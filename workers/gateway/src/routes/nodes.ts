import { Hono } from "hono";
import { bearerToken } from "../auth";
import { geoFlagOf } from "../client";
import { verifyCredential } from "../credentials";
import { regionHub } from "../durable";
import { HttpError } from "../errors";
import { CONNECT_TICKET_HEADER, writeTicket } from "../hub/connect-ticket";

/** The node side: agents connect their WebSocket here; it ends at their region's hub. */
export const nodes = new Hono<{ Bindings: Env }>();

nodes.get("/connect", async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new HttpError(426, "upgrade_required", "connect with a WebSocket upgrade", {}, { upgrade: "websocket" });
  }
  const token = bearerToken(c.req.header("authorization"));
  if (token === null) throw new HttpError(401, "unauthorized", "send Authorization: Bearer <node credential>", {}, { "www-authenticate": "Bearer" });
  const claims = await verifyCredential(c.env.NODE_CREDENTIAL_KEY, token, Date.now());
  const headers = new Headers(c.req.raw.headers);
  // Only the gateway speaks for a socket: a ticket the node sent along is dropped.
  headers.delete(CONNECT_TICKET_HEADER);
  // Where the socket arrived vs where the node is enrolled (anti-gaming); never trusted from the node.
  writeTicket(headers, claims, geoFlagOf(c.req.raw, c.env, claims.region));
  return regionHub(c.env, claims.region).fetch(new Request(c.req.raw, { headers }));
});
