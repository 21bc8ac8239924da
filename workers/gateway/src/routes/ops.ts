import { Hono } from "hono";
import { requireRole } from "../auth";
import { directory } from "../durable";
import { isolate } from "../isolate";

/** Health and metrics for operators and load balancers. */
export const ops = new Hono<{ Bindings: Env }>();

ops.get("/healthz", (c) => c.json({ status: "ok", snapshotVersion: isolate.fleet.snapshotVersion, policyVersion: isolate.fleet.policyVersion }));

ops.get("/metrics", requireRole("viewer"), async (c) => {
  const fleetFigures = await directory(c.env).metrics();
  const body = isolate.metrics.render({ ...fleetFigures, snapshotVersion: isolate.fleet.snapshotVersion, policyVersion: isolate.fleet.policyVersion, ejected: isolate.outliers.ejected().length });
  return c.text(body, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
});
