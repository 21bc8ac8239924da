import { Hono } from "hono";
import { admin } from "./admin";
import { carriersAdmin } from "./admin-carriers";
import { tenantsAdmin } from "./admin-tenants";
import { nodesAdmin } from "./admin-nodes";
import { consoleRoutes } from "./console";
import { notFound, renderError } from "./errors";
import { openApi } from "./openapi";
import { requestId } from "./request-id";
import { clientRoutes } from "./routes/client";
import { modelRoutes } from "./routes/models";
import { nodes } from "./routes/nodes";
import { ops } from "./routes/ops";

export { Directory } from "./directory";
export { DirectoryReplica } from "./directory-replica";
export { LivenessClock } from "./hub/liveness-clock";
export { RegionHub } from "./hub/region-hub";
export { OffloadLedger } from "./offload-ledger";
export { CarrierStore, PolicyStore } from "./policy-store";
export { NodeRegistry } from "./registry";
export { TenantLedger, TenantLimiter, TenantStore } from "./tenants";

/**
 * The gateway's route table. Handlers live in routes/ and the admin modules; the decision a
 * client request is routed by is made once, in decide.ts; Durable Objects are exported above.
 */
const app = new Hono<{ Bindings: Env }>();

app.onError(renderError);
app.notFound(notFound);
app.use("*", requestId);

app.route("/", ops); //             GET /healthz, GET /metrics
app.route("/", modelRoutes); //     GET /v1/models, GET /v1/models/:id (from the fleet snapshot)
app.route("/", clientRoutes); //    GET /route, ALL /v1/*
app.route("/nodes", nodes); //      /nodes/connect (WebSocket), /nodes/join, /nodes/me
app.route("/admin", nodesAdmin); // enrollment, registry, revocation, join tokens
app.route("/admin", admin); //      fleet, policy, audit
app.route("/admin", carriersAdmin); // carrier partners, offload usage
app.route("/admin", tenantsAdmin); // tenants, their keys and usage
app.route("/console", consoleRoutes(app)); // sign-in and the console's API (pages are static assets)
app.route("/", openApi); //         GET /openapi.json (every route above, from openapi/operations.ts; /docs reads it)

export default app;
