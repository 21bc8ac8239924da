import type { Directory } from "./directory";
import type { OffloadLedger } from "./offload-ledger";
import type { CarrierStore, PolicyStore } from "./policy-store";
import type { RegionHub } from "./region-hub";

export interface Env {
  REGION_HUB: DurableObjectNamespace<RegionHub>;
  DIRECTORY: DurableObjectNamespace<Directory>;
  POLICY_STORE: DurableObjectNamespace<PolicyStore>;
  CARRIER_STORE: DurableObjectNamespace<CarrierStore>;
  OFFLOAD_LEDGER: DurableObjectNamespace<OffloadLedger>;
  /** Secret. Bearer token of the admin role (everything, incl. enrollment and forced publishes). */
  ADMIN_TOKEN?: string;
  /** Secret, optional. Bearer token of the editor role: validate, dry-run, publish, rollback. */
  EDITOR_TOKEN?: string;
  /** Secret, optional. Bearer token of the viewer role: read-only admin API. */
  VIEWER_TOKEN?: string;
  /** Secret. HMAC key that signs node credentials; when unset enrollment and node connects are refused. */
  NODE_CREDENTIAL_KEY?: string;
  /** Milliseconds an idempotent request waits for a node's response headers (default 5000). */
  UPSTREAM_HEADERS_TIMEOUT_MS?: string;
  /**
   * Local development only (set in .dev.vars, never in wrangler.toml): when "true", the
   * x-client-* headers override request.cf so a laptop can play a client anywhere.
   */
  DEV_TRUST_CLIENT_GEO?: string;
  /** Local chaos tests only: "true" enables POST /admin/offload/ledger/:id/crash. */
  DEV_CHAOS_HOOKS?: string;
}
